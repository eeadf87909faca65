//! Weights in the book's PyTorch layout (safetensors), both ways, through Burn's store.
//!
//! `nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))` names its
//! parameters `1.weight` `[256, 784]`, `1.bias`, `3.weight` `[10, 256]`, `3.bias`: Linear layers
//! sit at the odd indices 1, 3, 5, ... and store weights as `[out, in]`, the transpose of Burn's
//! `[in, out]`. Burn's `SafetensorsStore` moves the tensors: its PyTorch adapters transpose the
//! Linear weights and key remapping renames `layers.k` <-> `2k+1`.
//!
//! The store reads no file metadata and can only apply tensors to a model already built with the
//! right sizes, so the header (names, dtypes, shapes, the `config` metadata) is read first with
//! the safetensors crate: it infers the hidden sizes and names the tensor at fault.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::store::{ApplyResult, BurnToPyTorchAdapter, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore, bridge};
use burn::tensor::Device;
use safetensors::tensor::{Dtype, SafeTensors, TensorInfo};

use crate::config::TrainConfig;
use crate::data::{NUM_CLASSES, PIXELS};
use crate::error::{Error, Result};
use crate::fsutil::atomic_write;
use crate::model::{Mlp, layer_sizes};

/// Metadata key holding the run's `TrainConfig` as TOML.
const CONFIG_KEY: &str = "config";
const LAYOUT: &str = "torch.nn.Sequential(Flatten, Linear, act, ..., Linear); Linear weights [out, in]";

/// `nn.Sequential` index of Burn's layer `k`.
fn torch_index(k: usize) -> usize {
    2 * k + 1
}

/// PyTorch's name for Burn's `layers.k.param`; other names come back unchanged.
fn torch_name(burn_path: &str) -> String {
    burn_path
        .strip_prefix("layers.")
        .and_then(|rest| rest.split_once('.'))
        .and_then(|(k, param)| Some(format!("{}.{param}", torch_index(k.parse().ok()?))))
        .unwrap_or_else(|| burn_path.to_string())
}

/// Serialise in the book's layout, with the run's config in the metadata.
pub fn to_safetensors(model: &Mlp, cfg: &TrainConfig) -> Result<Vec<u8>> {
    // PyTorch's `format = pt` and our keys, instead of Burn's default metadata.
    let mut store = SafetensorsStore::from_bytes(None)
        .with_to_adapter(BurnToPyTorchAdapter)
        .clear_metadata()
        .metadata("format", "pt")
        .metadata(CONFIG_KEY, cfg.to_toml())
        .metadata("layout", LAYOUT);
    // One rule per layer: a regex replacement cannot compute 2k + 1.
    for k in 0..model.layers.len() {
        store = store.with_key_remapping(format!(r"^layers\.{k}\."), format!("{}.", torch_index(k)));
    }
    model
        .save_into(&mut store)
        .and_then(|()| store.get_bytes())
        .map_err(|e| Error::failure_with("cannot serialise the model as safetensors", e))
}

/// Write `model` as safetensors to `out`, atomically.
pub fn export(model: &Mlp, cfg: &TrainConfig, out: &Path) -> Result<()> {
    // Built in memory and written by `atomic_write` (0644 files, the project's temp names).
    let bytes = to_safetensors(model, cfg)?;
    atomic_write(out, &bytes).map_err(|e| Error::io("cannot write", out, e))
}

/// A safetensors file in the book's layout, its header checked, before any model is built.
pub struct TorchFile {
    path: PathBuf,
    bytes: Vec<u8>,
    /// Hidden layer sizes implied by the tensor shapes.
    pub hidden: Vec<usize>,
    config_toml: Option<String>,
}

impl TorchFile {
    /// Read and check `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => bad(path, "file not found").caused_by(e).fix("pass a file written by `export` or safetensors' save_file").paraphrased(),
            _ => Error::io("cannot read", path, e),
        })?;
        Self::from_bytes(path, bytes)
    }

    /// Check `bytes` (called `path` in messages): tensor names, dtypes and shapes.
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Self> {
        let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| {
            bad(path, "not a valid safetensors file").caused_by(e).fix("export one with `export` or safetensors.torch.save_file")
        })?;
        let hidden = check_layout(path, &header.tensors())?;
        let config_toml = header.metadata().as_ref().and_then(|m| m.get(CONFIG_KEY).cloned());
        Ok(Self { path: path.to_path_buf(), bytes, hidden, config_toml })
    }

    /// The training config `export` stored in the metadata, if there is one.
    pub fn config(&self) -> Result<Option<TrainConfig>> {
        let origin = format!("{}: metadata `{CONFIG_KEY}`", self.path.display());
        self.config_toml.as_deref().map(|text| TrainConfig::from_toml_str(text, &origin)).transpose()
    }

    /// A model of `cfg` holding these weights, refused if any is NaN or infinite.
    pub fn into_model(self, cfg: &TrainConfig, device: &Device) -> Result<Mlp> {
        if self.hidden != cfg.hidden {
            return Err(bad(&self.path, format!(
                "its tensors describe layers {:?} but the config has hidden = {:?}; use a config whose `hidden` matches",
                layer_sizes(&self.hidden),
                cfg.hidden
            )));
        }
        let mut model = Mlp::new(cfg, device);
        // `1.*`, `3.*` -> `layers.1.*`, `layers.3.*` -> `layers.0.*`, `layers.1.*`. Problems come
        // back in the ApplyResult (not as the store's multi-line error) to be named below.
        let mut store = SafetensorsStore::from_bytes(Some(self.bytes))
            .with_from_adapter(PyTorchToBurnAdapter)
            .with_key_remapping(r"^(\d+)\.", "layers.${1}.")
            .map_indices_contiguous(true)
            .allow_partial(true)
            .validate(false);
        let result = model
            .load_from(&mut store)
            .map_err(|e| bad(&self.path, "cannot read its tensors").caused_by(e).fix("export the file again"))?;
        if let Some(problem) = apply_problem(&result) {
            return Err(bad(&self.path, format!("{problem}; export the file again")));
        }
        refuse_non_finite(&model, &self.path, torch_name, "re-export them from a healthy model")?;
        Ok(model)
    }
}

/// Load a model for `cfg` from safetensors; the file's layer sizes must equal `cfg.hidden`.
pub fn load_safetensors_model(path: &Path, cfg: &TrainConfig, device: &Device) -> Result<Mlp> {
    TorchFile::open(path)?.into_model(cfg, device)
}

fn bad(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::input(format!("{}: {msg}", path.display()))
}

/// The first thing the store could not apply, in PyTorch's names.
fn apply_problem(r: &ApplyResult) -> Option<String> {
    r.errors
        .first()
        .map(|e| format!("cannot load it ({e})"))
        .or_else(|| r.missing.first().map(|(p, _)| format!("tensor `{}` is missing", torch_name(p))))
        .or_else(|| r.unused.first().map(|p| format!("unexpected tensor `{}`", torch_name(p))))
}

/// Check the header against the book's layout; returns the hidden sizes.
fn check_layout(path: &Path, tensors: &HashMap<String, &TensorInfo>) -> Result<Vec<usize>> {
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    let mut last = 0;
    for name in names {
        last = last.max(sequential_index(name).ok_or_else(|| {
            bad(path, format!(
                "unexpected tensor `{name}`; expected only `1.weight`, `1.bias`, `3.weight`, ... (the book's nn.Sequential names)"
            ))
        })?);
    }
    if last == 0 {
        return Err(bad(path, "holds no tensors; expected `1.weight`, `1.bias`, `3.weight`, `3.bias`"));
    }
    let n_layers = last.div_ceil(2);
    if n_layers < 2 {
        return Err(bad(path, "needs at least two Linear layers (`1.*` and `3.*`)"));
    }
    let mut sizes = vec![PIXELS];
    for k in 0..n_layers {
        sizes.push(check_linear(path, tensors, k, sizes[k], k + 1 == n_layers)?);
    }
    Ok(sizes[1..n_layers].to_vec())
}

/// `i` for `i.weight` / `i.bias` with `i` odd.
fn sequential_index(name: &str) -> Option<usize> {
    let (text, kind) = name.split_once('.')?;
    // Canonical numbers only: `01.weight` would alias `1.weight` once renamed.
    let i = text.parse::<usize>().ok().filter(|i| i % 2 == 1 && i.to_string() == text)?;
    (kind == "weight" || kind == "bias").then_some(i)
}

/// Check Linear layer `k` (input width `d_in`); returns its output width.
fn check_linear(path: &Path, tensors: &HashMap<String, &TensorInfo>, k: usize, d_in: usize, last: bool) -> Result<usize> {
    let idx = torch_index(k);
    let (wn, bn) = (format!("{idx}.weight"), format!("{idx}.bias"));
    let shape = &f32_tensor(path, tensors, &wn)?.shape;
    let fault = |why: String| bad(path, format!("tensor `{wn}` has shape {shape:?}; {why}"));
    if shape.len() != 2 || shape[1] != d_in {
        return Err(fault(format!("expected [out, {d_in}] (PyTorch Linear weights are [out, in])")));
    }
    let d_out = shape[0];
    if last && d_out != NUM_CLASSES {
        return Err(fault(format!("the last layer must output {NUM_CLASSES} classes")));
    }
    if d_out == 0 {
        return Err(fault("a layer needs at least one unit".into()));
    }
    let bias = &f32_tensor(path, tensors, &bn)?.shape;
    if bias.as_slice() != [d_out] {
        return Err(bad(path, format!("tensor `{bn}` has shape {bias:?}; expected [{d_out}]")));
    }
    Ok(d_out)
}

fn f32_tensor<'a>(path: &Path, tensors: &HashMap<String, &'a TensorInfo>, name: &str) -> Result<&'a TensorInfo> {
    let info = *tensors.get(name).ok_or_else(|| bad(path, format!("tensor `{name}` is missing")))?;
    if info.dtype != Dtype::F32 {
        return Err(bad(path, format!(
            "tensor `{name}` has dtype {:?}; expected F32 (float32): convert it with tensor.float() before saving",
            info.dtype
        )));
    }
    Ok(info)
}

/// Refuse NaN or infinite weights, naming the first tensor that holds any by its Burn name
/// (`layers.0.weight`, as a record stores it). `origin` is the file they came from.
pub fn ensure_finite(model: &Mlp, origin: &Path) -> Result<()> {
    refuse_non_finite(model, origin, str::to_string, "use an earlier checkpoint or train again")
}

fn refuse_non_finite(model: &Mlp, origin: &Path, name: fn(&str) -> String, fix: &str) -> Result<()> {
    for tensor in model.collect(None, None, false) {
        let tensor_name = name(&tensor.name);
        let unreadable = |e: crate::error::Cause| Error::failure_with(format!("{}: cannot read tensor {tensor_name}", origin.display()), e);
        let data = bridge::into_data(tensor).map_err(|e| unreadable(e.into()))?.convert::<f32>();
        let values = data.as_slice::<f32>().map_err(|e| unreadable(format!("{e:?}").into()))?;
        let count = values.iter().filter(|v| !v.is_finite()).count();
        if count > 0 {
            let values = if count == 1 { "value" } else { "values" };
            return Err(bad(origin, format!(
                "tensor {tensor_name} has {count} non-finite {values} (NaN or infinity); these weights cannot be used — {fix}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::TensorView;

    fn device() -> Device {
        crate::backend::cpu_device()
    }

    fn burn_weights(m: &Mlp) -> Vec<Vec<f32>> {
        m.collect(None, None, false)
            .into_iter()
            .map(|t| bridge::into_data(t).unwrap().try_to_vec::<f32>().unwrap())
            .collect()
    }

    fn parse(bytes: Vec<u8>) -> Result<TorchFile> {
        TorchFile::from_bytes(Path::new("m.safetensors"), bytes)
    }

    #[test]
    fn names_shapes_metadata_and_round_trip() {
        let cfg = TrainConfig { seed: 3, ..TrainConfig::default() };
        let m = Mlp::new(&cfg, &device());
        let bytes = to_safetensors(&m, &cfg).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let mut names = st.names();
        names.sort();
        assert_eq!(names, vec!["1.bias", "1.weight", "3.bias", "3.weight"]);
        assert_eq!(st.tensor("1.weight").unwrap().shape(), &[256, 784]);
        assert_eq!(st.tensor("1.weight").unwrap().dtype(), Dtype::F32);
        assert_eq!(st.tensor("3.weight").unwrap().shape(), &[10, 256]);
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let meta = header.metadata().clone().unwrap();
        let mut keys: Vec<&String> = meta.keys().collect();
        keys.sort();
        assert_eq!(keys, ["config", "format", "layout"]);
        assert_eq!(meta["format"], "pt");
        // [out, in] is the transpose of Burn's [in, out]: torch (row 1, col 0) is Burn (row 0, col 1).
        let torch_w = st.tensor("1.weight").unwrap().data()[784 * 4..785 * 4].to_vec();
        let burn_w = burn_weights(&m)[0][1];
        assert_eq!(torch_w, burn_w.to_le_bytes());
        let file = parse(bytes).unwrap();
        assert_eq!(file.hidden, vec![256]);
        assert_eq!(file.config().unwrap(), Some(cfg.clone()));
        let other = TrainConfig { seed: 9, ..cfg.clone() };
        let back = file.into_model(&other, &device()).unwrap();
        assert_eq!(burn_weights(&back), burn_weights(&m));
    }

    #[test]
    fn deeper_models_use_sequential_numbering() {
        let cfg = TrainConfig { hidden: vec![64, 32], ..TrainConfig::default() };
        let m = Mlp::new(&cfg, &device());
        let bytes = to_safetensors(&m, &cfg).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.tensor("5.weight").unwrap().shape(), &[10, 32]);
        let file = parse(bytes).unwrap();
        assert_eq!(file.hidden, vec![64, 32]);
        assert_eq!(burn_weights(&file.into_model(&cfg, &device()).unwrap()), burn_weights(&m));
    }

    /// A file of F32 zeros (or the dtype given), with `poison` written into the named tensor.
    fn file(tensors: &[(&str, Dtype, Vec<usize>)], poison: Option<(&str, &[f32])>) -> Vec<u8> {
        let data: Vec<(String, Vec<u8>, Dtype, Vec<usize>)> = tensors
            .iter()
            .map(|(n, d, s)| {
                let mut bytes = vec![0u8; s.iter().product::<usize>() * d.bitsize() / 8];
                if let Some((_, values)) = poison.filter(|(p, _)| p == n) {
                    for (i, v) in values.iter().enumerate() {
                        bytes[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
                    }
                }
                (n.to_string(), bytes, *d, s.clone())
            })
            .collect();
        let views: Vec<(String, TensorView)> = data
            .iter()
            .map(|(n, b, d, s)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
            .collect();
        safetensors::serialize(views, None).unwrap()
    }

    fn small() -> Vec<(&'static str, Dtype, Vec<usize>)> {
        vec![
            ("1.weight", Dtype::F32, vec![8, 784]),
            ("1.bias", Dtype::F32, vec![8]),
            ("3.weight", Dtype::F32, vec![10, 8]),
            ("3.bias", Dtype::F32, vec![10]),
        ]
    }

    fn refused(tensors: &[(&str, Dtype, Vec<usize>)]) -> String {
        let e = parse(file(tensors, None)).err().unwrap();
        assert_eq!(e.exit_code(), 2, "{e}");
        let msg = e.to_string();
        assert!(msg.starts_with("m.safetensors: ") && !msg.contains('\n'), "{msg}");
        msg
    }

    #[test]
    fn problems_name_the_tensor() {
        let ok = small();
        assert_eq!(parse(file(&ok, None)).unwrap().hidden, vec![8]);
        let mut missing = ok.clone();
        missing.remove(3);
        assert!(refused(&missing).contains("`3.bias` is missing"));
        let mut extra = ok.clone();
        extra.push(("extra", Dtype::F32, vec![1]));
        assert!(refused(&extra).contains("unexpected tensor `extra`"));
        let mut shape = ok.clone();
        shape[0].2 = vec![8, 700];
        assert!(refused(&shape).contains("`1.weight` has shape [8, 700]"));
        let mut classes = ok.clone();
        classes[2].2 = vec![9, 8];
        assert!(refused(&classes).contains("must output 10 classes"));
        let mut dtype = ok.clone();
        dtype[1].1 = Dtype::F64;
        assert!(refused(&dtype).contains("`1.bias` has dtype F64"));
        assert!(refused(&ok[..2]).contains("at least two Linear layers"));
        let e = parse(b"garbage".to_vec()).err().unwrap();
        assert!(e.to_string().contains("not a valid safetensors file"), "{e}");
        let cfg = TrainConfig { hidden: vec![16], ..TrainConfig::default() };
        let e = parse(file(&ok, None)).unwrap().into_model(&cfg, &device()).err().unwrap();
        assert!(e.to_string().contains("[784, 8, 10]"), "{e}");
    }

    #[test]
    fn non_finite_weights_are_refused_with_name_and_count() {
        let cfg = TrainConfig { hidden: vec![8], ..TrainConfig::default() };
        let load = |poison| parse(file(&small(), poison)).unwrap().into_model(&cfg, &device());
        let e = load(Some(("1.weight", &[f32::NAN, 1.0, f32::NAN, f32::NAN][..]))).err().unwrap();
        assert_eq!(e.exit_code(), 2);
        assert_eq!(
            e.to_string(),
            "m.safetensors: tensor 1.weight has 3 non-finite values (NaN or infinity); \
             these weights cannot be used — re-export them from a healthy model"
        );
        let e = load(Some(("3.bias", &[0.0, f32::NEG_INFINITY][..]))).err().unwrap();
        assert!(e.to_string().contains("tensor 3.bias has 1 non-finite value "), "{e}");
        let healthy = load(Some(("3.weight", &[1.0, -2.0, f32::MAX][..]))).unwrap();
        ensure_finite(&healthy, Path::new("model.bpk")).unwrap();
    }

    #[test]
    fn records_are_checked_under_burn_names() {
        let cfg = TrainConfig { hidden: vec![8], ..TrainConfig::default() };
        let mut m = Mlp::new(&cfg, &device());
        ensure_finite(&m, Path::new("model.bpk")).unwrap();
        m.layers[1].bias = Some(burn::module::Param::from_tensor(burn::tensor::Tensor::<1>::from_data(
            burn::tensor::TensorData::new(vec![f32::INFINITY; 10], [10]),
            &device(),
        )));
        let e = ensure_finite(&m, Path::new("run/model.bpk")).err().unwrap();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().starts_with("run/model.bpk: tensor layers.1.bias has 10 non-finite values"), "{e}");
    }
}
