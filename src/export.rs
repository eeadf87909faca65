//! Weights in the book's PyTorch layout (safetensors), both ways.
//!
//! `nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))` names its
//! parameters `1.weight` `[256, 784]`, `1.bias`, `3.weight` `[10, 256]`, `3.bias`: Linear layers
//! sit at the odd indices 1, 3, 5, ... and store weights as `[out, in]`, the transpose of Burn's
//! `[in, out]`.

use std::collections::HashMap;
use std::path::Path;

use burn::tensor::Device;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::config::TrainConfig;
use crate::data::{NUM_CLASSES, PIXELS};
use crate::error::{Error, Result};
use crate::fsutil::atomic_write;
use crate::model::{Mlp, layer_sizes, linear_from};

/// Host copy of one Linear layer in PyTorch layout.
#[derive(Debug, Clone, PartialEq)]
pub struct TorchLinear {
    /// `[out, in]` row-major.
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub d_in: usize,
    pub d_out: usize,
}

fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = v[r * cols + c];
        }
    }
    t
}

/// The model's layers in PyTorch layout.
pub fn to_torch_layers(model: &Mlp) -> Vec<TorchLinear> {
    model
        .layers
        .iter()
        .map(|l| {
            let [d_in, d_out] = l.weight.shape().dims();
            let w: Vec<f32> = l.weight.val().into_data().convert::<f32>().try_to_vec::<f32>().unwrap_or_default();
            let bias: Vec<f32> = match &l.bias {
                Some(b) => b.val().into_data().convert::<f32>().try_to_vec::<f32>().unwrap_or_default(),
                None => vec![0.0; d_out],
            };
            TorchLinear {
                weight: transpose(&w, d_in, d_out),
                bias,
                d_in,
                d_out,
            }
        })
        .collect()
}

/// Build a model from PyTorch-layout layers with `cfg`'s activation.
pub fn from_torch_layers(layers: &[TorchLinear], cfg: &TrainConfig, device: &Device) -> Mlp {
    Mlp {
        layers: layers
            .iter()
            .map(|l| linear_from(transpose(&l.weight, l.d_out, l.d_in), l.bias.clone(), l.d_in, l.d_out, device))
            .collect(),
        activation: cfg.activation,
    }
}

fn le_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Serialise in the book's layout, with the run's config in the metadata.
pub fn to_safetensors(model: &Mlp, cfg: &TrainConfig) -> Result<Vec<u8>> {
    let layers = to_torch_layers(model);
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = layers
        .iter()
        .enumerate()
        .flat_map(|(i, l)| {
            let idx = 2 * i + 1;
            [
                (format!("{idx}.weight"), le_bytes(&l.weight), vec![l.d_out, l.d_in]),
                (format!("{idx}.bias"), le_bytes(&l.bias), vec![l.d_out]),
            ]
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(name, b, shape)| {
            TensorView::new(Dtype::F32, shape.clone(), b)
                .map(|v| (name.clone(), v))
                .map_err(|e| Error::failure(format!("cannot build tensor {name}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    meta.insert("config".to_string(), cfg.to_toml());
    meta.insert(
        "layout".to_string(),
        "torch.nn.Sequential(Flatten, Linear, act, ..., Linear); Linear weights [out, in]".to_string(),
    );
    safetensors::serialize(views, Some(meta)).map_err(|e| Error::failure(format!("cannot serialise safetensors: {e}")))
}

/// Write `model` as safetensors to `out`, atomically.
pub fn export(model: &Mlp, cfg: &TrainConfig, out: &Path) -> Result<()> {
    let bytes = to_safetensors(model, cfg)?;
    atomic_write(out, &bytes).map_err(|e| Error::io("cannot write", out, e))
}

/// Parsed file: the layers and the config found in the metadata (if any).
pub struct TorchWeights {
    pub layers: Vec<TorchLinear>,
    pub config: Option<TrainConfig>,
}

impl TorchWeights {
    /// Hidden layer sizes implied by the tensor shapes.
    pub fn hidden(&self) -> Vec<usize> {
        self.layers[..self.layers.len() - 1].iter().map(|l| l.d_out).collect()
    }
}

/// Read and check a safetensors file in the book's layout. Every problem names the tensor.
pub fn read_safetensors(path: &Path) -> Result<TorchWeights> {
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::input(format!("{}: file not found", path.display())),
        _ => Error::io("cannot read", path, e),
    })?;
    parse_safetensors(&bytes).map_err(|m| Error::input(format!("{}: {m}", path.display())))
}

pub fn parse_safetensors(bytes: &[u8]) -> std::result::Result<TorchWeights, String> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| format!("not a valid safetensors file ({e}); export one with `export` or safetensors.torch.save_file"))?;
    let config = SafeTensors::read_metadata(bytes)
        .ok()
        .and_then(|(_, m)| m.metadata().as_ref().and_then(|m| m.get("config").cloned()))
        .and_then(|text| TrainConfig::from_toml_str(&text, "metadata").ok());
    let mut indices = Vec::new();
    for name in st.names() {
        let ok = name
            .split_once('.')
            .filter(|(i, kind)| (*kind == "weight" || *kind == "bias") && i.parse::<usize>().is_ok_and(|i| i % 2 == 1));
        match ok {
            Some((i, _)) => indices.push(i.parse::<usize>().unwrap_or(0)),
            None => {
                return Err(format!(
                    "unexpected tensor `{name}`; expected only `1.weight`, `1.bias`, `3.weight`, ... (the book's nn.Sequential names)"
                ));
            }
        }
    }
    indices.sort_unstable();
    indices.dedup();
    if indices.is_empty() {
        return Err("holds no tensors; expected `1.weight`, `1.bias`, `3.weight`, `3.bias`".into());
    }
    let n_layers = indices.last().map(|&i| i.div_ceil(2)).unwrap_or(0);
    if n_layers < 2 {
        return Err("needs at least two Linear layers (`1.*` and `3.*`)".into());
    }
    let get = |name: &str| -> std::result::Result<Vec<f32>, (Vec<usize>, String)> {
        let t = st.tensor(name).map_err(|_| (vec![], format!("tensor `{name}` is missing")))?;
        if t.dtype() != Dtype::F32 {
            return Err((vec![], format!("tensor `{name}` has dtype {:?}; expected F32 (float32)", t.dtype())));
        }
        let _ = t.shape();
        Ok(t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    };
    let mut layers = Vec::new();
    let mut d_in = PIXELS;
    for k in 0..n_layers {
        let idx = 2 * k + 1;
        let (wn, bn) = (format!("{idx}.weight"), format!("{idx}.bias"));
        let wt = st.tensor(&wn).map_err(|_| format!("tensor `{wn}` is missing"))?;
        let shape = wt.shape().to_vec();
        if shape.len() != 2 || shape[1] != d_in {
            return Err(format!(
                "tensor `{wn}` has shape {shape:?}; expected [out, {d_in}] (PyTorch Linear weights are [out, in])"
            ));
        }
        let d_out = shape[0];
        if k == n_layers - 1 && d_out != NUM_CLASSES {
            return Err(format!("tensor `{wn}` has shape {shape:?}; the last layer must output {NUM_CLASSES} classes"));
        }
        if d_out == 0 {
            return Err(format!("tensor `{wn}` has shape {shape:?}; a layer needs at least one unit"));
        }
        let weight = get(&wn).map_err(|(_, m)| m)?;
        let bt = st.tensor(&bn).map_err(|_| format!("tensor `{bn}` is missing"))?;
        if bt.shape() != [d_out] {
            return Err(format!("tensor `{bn}` has shape {:?}; expected [{d_out}]", bt.shape()));
        }
        let bias = get(&bn).map_err(|(_, m)| m)?;
        layers.push(TorchLinear { weight, bias, d_in, d_out });
        d_in = d_out;
    }
    Ok(TorchWeights { layers, config })
}

/// Load a model for `cfg` from safetensors; the file's layer sizes must equal `cfg.hidden`.
pub fn load_safetensors_model(path: &Path, cfg: &TrainConfig, device: &Device) -> Result<Mlp> {
    let w = read_safetensors(path)?;
    let sizes = layer_sizes(&w.hidden());
    if w.hidden() != cfg.hidden {
        return Err(Error::input(format!(
            "{}: its tensors describe layers {:?} but the config has hidden = {:?}; use a config whose `hidden` matches",
            path.display(),
            sizes,
            cfg.hidden
        )));
    }
    Ok(from_torch_layers(&w.layers, cfg, device))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> Device {
        crate::backend::cpu_device()
    }

    #[test]
    fn names_shapes_and_round_trip() {
        let cfg = TrainConfig::default();
        let m = Mlp::new(&cfg, &device());
        let bytes = to_safetensors(&m, &cfg).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let mut names = st.names();
        names.sort();
        assert_eq!(names, vec!["1.bias", "1.weight", "3.bias", "3.weight"]);
        assert_eq!(st.tensor("1.weight").unwrap().shape(), &[256, 784]);
        assert_eq!(st.tensor("3.weight").unwrap().shape(), &[10, 256]);
        let w = parse_safetensors(&bytes).unwrap();
        assert_eq!(w.hidden(), vec![256]);
        assert_eq!(w.config.as_ref(), Some(&cfg));
        let back = from_torch_layers(&w.layers, &cfg, &device());
        assert_eq!(to_torch_layers(&back), to_torch_layers(&m));
        // [out, in] is the transpose of Burn's [in, out].
        let burn_w: Vec<f32> = m.layers[0].weight.val().into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(w.layers[0].weight[784], burn_w[1]);
    }

    #[test]
    fn deeper_models_use_sequential_numbering() {
        let cfg = TrainConfig { hidden: vec![64, 32], ..TrainConfig::default() };
        let bytes = to_safetensors(&Mlp::new(&cfg, &device()), &cfg).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.tensor("5.weight").unwrap().shape(), &[10, 32]);
        assert_eq!(parse_safetensors(&bytes).unwrap().hidden(), vec![64, 32]);
    }

    fn file(tensors: Vec<(&str, Dtype, Vec<usize>)>) -> Vec<u8> {
        let data: Vec<(String, Vec<u8>, Dtype, Vec<usize>)> = tensors
            .into_iter()
            .map(|(n, d, s)| {
                let len = s.iter().product::<usize>() * d.bitsize() / 8;
                (n.to_string(), vec![0u8; len], d, s)
            })
            .collect();
        let views: Vec<(String, TensorView)> = data
            .iter()
            .map(|(n, b, d, s)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
            .collect();
        safetensors::serialize(views, None).unwrap()
    }

    #[test]
    fn problems_name_the_tensor() {
        let ok = vec![
            ("1.weight", Dtype::F32, vec![8, 784]),
            ("1.bias", Dtype::F32, vec![8]),
            ("3.weight", Dtype::F32, vec![10, 8]),
            ("3.bias", Dtype::F32, vec![10]),
        ];
        assert_eq!(parse_safetensors(&file(ok.clone())).unwrap().hidden(), vec![8]);
        let mut missing = ok.clone();
        missing.remove(3);
        assert!(parse_safetensors(&file(missing)).err().unwrap().contains("`3.bias`"));
        let mut extra = ok.clone();
        extra.push(("extra", Dtype::F32, vec![1]));
        assert!(parse_safetensors(&file(extra)).err().unwrap().contains("`extra`"));
        let mut shape = ok.clone();
        shape[0].2 = vec![8, 700];
        assert!(parse_safetensors(&file(shape)).err().unwrap().contains("`1.weight`"));
        let mut dtype = ok.clone();
        dtype[1].1 = Dtype::F64;
        assert!(parse_safetensors(&file(dtype)).err().unwrap().contains("`1.bias`"));
        assert!(parse_safetensors(b"garbage").is_err());
    }
}
