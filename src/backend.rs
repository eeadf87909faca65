//! The one place that chooses the backend and the device.
//!
//! Cargo features decide which backends are compiled in (`ndarray`, `flex`, `wgpu`); `--backend`
//! picks one of those at run time. The default is wgpu when it is compiled in, else flex, else
//! ndarray.

use burn::tensor::Device;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// CPU, burn-ndarray, the older CPU backend (cargo feature `ndarray`).
    Ndarray,
    /// CPU, burn-flex, Burn's newer CPU backend (cargo feature `flex`, on by default; faster).
    Flex,
    /// GPU through wgpu: Vulkan, Metal or DX12 (cargo feature `wgpu`).
    Wgpu,
}

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Ndarray => "ndarray",
            BackendKind::Flex => "flex",
            BackendKind::Wgpu => "wgpu",
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Backends compiled into this binary, the default first.
#[allow(clippy::vec_init_then_push, reason = "one push per backend feature built in")]
pub fn compiled() -> Vec<BackendKind> {
    let built = [(cfg!(feature = "wgpu"), BackendKind::Wgpu), (cfg!(feature = "flex"), BackendKind::Flex), (cfg!(feature = "ndarray"), BackendKind::Ndarray)];
    built.into_iter().filter_map(|(on, kind)| on.then_some(kind)).collect()
}

/// The backend to use: the requested one if it is compiled in, else the default.
/// The environment variable that sets the default backend (e.g. `flex` on a machine whose
/// binary has wgpu built in but no GPU).
pub const ENV_BACKEND: &str = "D2L_MLP_BACKEND";

/// Where a requested backend was named, for the message that refuses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Asked {
    /// `--backend B`.
    #[default]
    Flag,
    /// The environment variable [`ENV_BACKEND`].
    Env,
}

/// The one place that chooses the backend and device: resolve the request, then open it.
pub fn open(requested: Option<BackendKind>, asked: Asked) -> Result<Selected> {
    select(resolve_asked(requested, &compiled(), asked)?)
}

/// The fastest CPU backend built in, for messages that suggest one.
pub fn best_cpu() -> Option<BackendKind> {
    compiled().into_iter().find(|k| *k != BackendKind::Wgpu)
}

pub fn resolve(requested: Option<BackendKind>) -> Result<BackendKind> {
    resolve_in(requested, &compiled())
}

/// [`resolve`] against an explicit list of compiled backends (testable for any build).
pub fn resolve_in(requested: Option<BackendKind>, available: &[BackendKind]) -> Result<BackendKind> {
    resolve_asked(requested, available, Asked::Flag)
}

/// [`resolve_in`], the refusal naming where the backend was asked for (the flag or the variable).
pub fn resolve_asked(requested: Option<BackendKind>, available: &[BackendKind], asked: Asked) -> Result<BackendKind> {
    let names = available.iter().map(|b| b.name()).collect::<Vec<_>>().join("|");
    match requested {
        Some(k) if available.contains(&k) => Ok(k),
        Some(k) => {
            let (named, instead) = match asked {
                Asked::Flag => (format!("--backend {k}"), format!(" or use --backend {names}")),
                Asked::Env => (format!("{ENV_BACKEND}={k} (set in the environment)"), format!(", or set {ENV_BACKEND}={names} or unset it")),
            };
            let instead = if available.is_empty() { String::new() } else { instead };
            Err(Error::input(format!(
                "{named}: this binary was built without the `{k}` backend; rebuild with `cargo build --release --features {k}`{instead}"
            )))
        }
        None => available.first().copied().ok_or_else(|| {
            Error::input("this binary has no backend compiled in; build with `--features ndarray` or `--features wgpu`")
        }),
    }
}

/// A ready device and a one-line description of it.
pub struct Selected {
    pub kind: BackendKind,
    pub device: Device,
    pub description: String,
}

/// Create the device for `kind`. For wgpu, the adapter is acquired here so that a machine
/// without one gets an error instead of a panic on the first tensor operation.
pub fn select(kind: BackendKind) -> Result<Selected> {
    match kind {
        BackendKind::Ndarray => ndarray_device(),
        BackendKind::Flex => flex_device(),
        BackendKind::Wgpu => wgpu_device(),
    }
}

fn threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// The default CPU device: flex when built in, else ndarray (which Burn 0.22 deprecates).
#[cfg(feature = "flex")]
pub fn cpu_device() -> Device {
    Device::flex()
}

#[cfg(all(feature = "ndarray", not(feature = "flex")))]
pub fn cpu_device() -> Device {
    ndarray_raw()
}

#[cfg(feature = "ndarray")]
fn ndarray_raw() -> Device {
    #[allow(deprecated)]
    Device::ndarray()
}

#[cfg(feature = "ndarray")]
fn ndarray_device() -> Result<Selected> {
    let device = ndarray_raw();
    Ok(Selected {
        kind: BackendKind::Ndarray,
        device,
        description: format!("backend ndarray (CPU, {} threads)", threads()),
    })
}

#[cfg(not(feature = "ndarray"))]
fn ndarray_device() -> Result<Selected> {
    Err(resolve_in(Some(BackendKind::Ndarray), &compiled()).unwrap_err())
}

#[cfg(feature = "flex")]
fn flex_device() -> Result<Selected> {
    Ok(Selected {
        kind: BackendKind::Flex,
        device: Device::flex(),
        description: format!("backend flex (CPU, {} threads)", threads()),
    })
}

#[cfg(not(feature = "flex"))]
fn flex_device() -> Result<Selected> {
    Err(resolve_in(Some(BackendKind::Flex), &compiled()).unwrap_err())
}

#[cfg(feature = "wgpu")]
fn wgpu_device() -> Result<Selected> {
    use std::sync::OnceLock;
    // The runtime can be initialised once per process; keep the result for later calls.
    static DEVICE: OnceLock<std::result::Result<(Device, String), String>> = OnceLock::new();
    let res = DEVICE.get_or_init(|| {
        cubecl_cache_in_user_folder();
        Device::wgpu_options()
            .init_with_setup()
            .map(|(device, setup)| {
                let info = setup.adapter.get_info();
                (device, format!("backend wgpu ({}, {:?})", info.name, info.backend))
            })
            .map_err(|e| e.to_string().lines().next().unwrap_or("").to_string())
    });
    match res {
        Ok((device, description)) => Ok(Selected {
            kind: BackendKind::Wgpu,
            device: device.clone(),
            description: description.clone(),
        }),
        Err(msg) => {
            let cpu = best_cpu().map(|k| format!("use --backend {k} (or set {ENV_BACKEND}={k}), or ")).unwrap_or_default();
            Err(Error::failure(format!(
                "wgpu found no usable GPU adapter ({msg}); {cpu}install a Vulkan driver (e.g. apt-get install mesa-vulkan-drivers)"
            )))
        }
    }
}

/// Where cubecl keeps what it learns about the GPU (autotune results, compiled kernels): its
/// own default is `target/environment` of the outermost Cargo project above the working folder,
/// so an installed binary run inside someone's project would write into it. Unless a
/// `cubecl.toml` (or `burn.toml`'s `[cubecl]`) chooses another place, use the user's cache
/// folder (`$XDG_CACHE_HOME/cubecl`, else `~/.cache/cubecl`), as any installed program would.
/// The file and cubecl's `CUBECL_*` variables are read as cubecl reads them.
#[cfg(feature = "wgpu")]
fn cubecl_cache_in_user_folder() {
    use burn::cubecl::config::cache::CacheConfig;
    use burn::cubecl::config::{CubeClRuntimeConfig, RuntimeConfig};
    let mut config = CubeClRuntimeConfig::from_current_dir().override_from_env();
    if matches!(config.environment.path, CacheConfig::Target) {
        config.environment.path = CacheConfig::Global;
    }
    // Refused (and harmless) when cubecl already read its configuration in this process.
    let _ = CubeClRuntimeConfig::try_set(config);
}

/// Whether `device` (plain or autodiff) belongs to a GPU backend.
pub fn is_gpu(device: &Device) -> bool {
    #[cfg(feature = "wgpu")]
    {
        matches!(device.clone().without_autodiff().as_dispatch(), burn::backend::DispatchDevice::Cube(_))
    }
    #[cfg(not(feature = "wgpu"))]
    {
        let _ = device;
        false
    }
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_device() -> Result<Selected> {
    Err(resolve_in(Some(BackendKind::Wgpu), &compiled()).unwrap_err())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backend_asked_for_in_the_environment_names_the_variable() {
        let e = resolve_asked(Some(BackendKind::Wgpu), &[BackendKind::Flex], Asked::Env).unwrap_err().to_string();
        assert!(e.starts_with("D2L_MLP_BACKEND=wgpu (set in the environment): "), "{e}");
        assert!(e.contains("--features wgpu") && e.contains("set D2L_MLP_BACKEND=flex or unset it") && !e.contains("--backend"), "{e}");
    }

    #[test]
    fn a_backend_not_built_names_the_feature() {
        let e = resolve_in(Some(BackendKind::Wgpu), &[BackendKind::Ndarray]).unwrap_err();
        let m = e.to_string();
        assert!(m.contains("--features wgpu"), "{m}");
        assert!(m.contains("--backend ndarray"), "{m}");
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn default_is_the_first_compiled() {
        assert_eq!(
            resolve_in(None, &[BackendKind::Wgpu, BackendKind::Ndarray]).unwrap(),
            BackendKind::Wgpu
        );
        assert_eq!(resolve_in(None, &[BackendKind::Ndarray]).unwrap(), BackendKind::Ndarray);
        assert!(resolve_in(None, &[]).is_err());
    }

    // Which backends this build lists: tests/backends.rs (CI builds it with every feature).
}
