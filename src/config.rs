//! The run configuration: the book's recipe as defaults, read from `config/*.toml`, overridable
//! from the CLI, validated, and saved beside the run as `config.toml`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsutil::atomic_write;

mod set;
pub use set::{Setting, parse_settings};

/// Hidden-layer activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Relu,
    Sigmoid,
    Tanh,
}

impl Activation {
    pub const ALL: [Activation; 3] = [Activation::Relu, Activation::Sigmoid, Activation::Tanh];

    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
        }
    }
}

impl std::fmt::Display for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How the weights start (biases always start at zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// Normal(0, `init_std`): the book's recipe.
    Normal,
    /// Glorot/Xavier uniform, U(-a, a) with a = sqrt(6 / (fan_in + fan_out)).
    XavierUniform,
    /// He/Kaiming normal for ReLU, Normal(0, sqrt(2 / fan_in)).
    KaimingNormal,
}

impl Init {
    pub fn name(self) -> &'static str {
        match self {
            Init::Normal => "normal",
            Init::XavierUniform => "xavier_uniform",
            Init::KaimingNormal => "kaiming_normal",
        }
    }
}

/// Everything that defines a run. Defaults equal the book's recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Number of epochs (passes over the 60,000 training images).
    pub epochs: usize,
    /// SGD learning rate (no momentum, no weight decay).
    pub lr: f64,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Seed for weight initialisation and for the per-epoch shuffle order.
    pub seed: u64,
    /// Sizes of the hidden layers, in order.
    pub hidden: Vec<usize>,
    /// Hidden-layer activation: relu, sigmoid or tanh.
    pub activation: Activation,
    /// Standard deviation of the Normal(0, std) weight initialisation (biases start at zero).
    pub init_std: f64,
    /// Shuffle the training set every epoch (the book does); `false` keeps file order.
    pub shuffle: bool,
    /// Weight initialisation: normal (with `init_std`), xavier_uniform or kaiming_normal.
    pub init: Init,
    /// SGD momentum (0: plain SGD, as the book).
    pub momentum: f64,
    /// SGD weight decay (L2 penalty; 0: none).
    pub weight_decay: f64,
    /// Dropout probability after each hidden activation, in training only (0: none).
    pub dropout: f64,
    /// Training images held out from the end of the training set as a validation split, scored
    /// every epoch; the best epoch's model is then the run's model and the test set is evaluated
    /// once, at the end (0: none, the book's recipe). Saved only when set.
    #[serde(skip_serializing_if = "is_zero")]
    pub val_size: usize,
    /// With `val_size`: stop after this many epochs in a row without a better validation
    /// accuracy (none: train every epoch). Saved only when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patience: Option<usize>,
    /// Write TensorBoard event files in the run's `tb/` folder. Not part of the recipe (see
    /// [`OUTPUT_FIELDS`]); saved only when off, so that the recipes of runs and studies that
    /// write events read as they did before the field existed.
    #[serde(skip_serializing_if = "is_true")]
    pub tensorboard: bool,
}

/// Fields that say what a run writes beside its model, not how it trains: never part of a
/// recipe's identity (resume, a sweep's check of its trials and its refit ignore them).
pub const OUTPUT_FIELDS: [&str; 1] = ["tensorboard"];

/// Every field of the recipe, in the file's order: what a config file and `--set FIELD=VALUE`
/// accept.
pub const FIELDS: [&str; 15] = [
    "epochs", "lr", "batch_size", "seed", "hidden", "activation", "init_std", "shuffle", "init", "momentum",
    "weight_decay", "dropout", "val_size", "patience", "tensorboard",
];

fn is_true(b: &bool) -> bool {
    *b
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 10,
            lr: 0.1,
            batch_size: 256,
            seed: 42,
            hidden: vec![256],
            activation: Activation::Relu,
            init_std: 0.01,
            shuffle: true,
            init: Init::Normal,
            momentum: 0.0,
            weight_decay: 0.0,
            dropout: 0.0,
            val_size: 0,
            patience: None,
            tensorboard: true,
        }
    }
}

/// CLI overrides of the recipe (`None` = keep the file's value): the `--set FIELD=VALUE` list
/// and the shorthand flags (`--epochs` etc.). Both are explicit, so one field named by both is
/// refused rather than one silently winning.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub set: Vec<Setting>,
    pub epochs: Option<usize>,
    pub lr: Option<f64>,
    pub batch_size: Option<usize>,
    pub seed: Option<u64>,
    pub val_size: Option<usize>,
    pub patience: Option<usize>,
    pub tensorboard: Option<bool>,
}

impl Overrides {
    /// The recipe fields the shorthand flags set, with the flag's name.
    pub fn shorthands(&self) -> Vec<(&'static str, &'static str)> {
        [
            ("epochs", "--epochs", self.epochs.is_some()),
            ("lr", "--lr", self.lr.is_some()),
            ("batch_size", "--batch-size", self.batch_size.is_some()),
            ("seed", "--seed", self.seed.is_some()),
            ("val_size", "--val-size", self.val_size.is_some()),
            ("patience", "--patience", self.patience.is_some()),
            ("tensorboard", "--tensorboard", self.tensorboard.is_some()),
        ]
        .into_iter()
        .filter(|(_, _, given)| *given)
        .map(|(field, flag, _)| (field, flag))
        .collect()
    }

    /// A field both `--set` and its shorthand flag name.
    fn check_conflicts(&self) -> Result<()> {
        for (field, flag) in self.shorthands() {
            if let Some(s) = self.set.iter().find(|s| s.field == field) {
                return Err(Error::config(format!(
                    "--set {} and {flag} both set `{field}`; pass one of them",
                    s.shown()
                )));
            }
        }
        Ok(())
    }
}

impl TrainConfig {
    /// Parse TOML text; `origin` names the file in error messages.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self> {
        let cfg: TrainConfig = toml::from_str(text).map_err(|e| {
            // toml's message spans several lines (with a source excerpt): keep the first.
            let msg = e.message().lines().next().unwrap_or("invalid TOML").to_string();
            // Name the line and, for a bad value, its field (the key left of `=` on that line).
            let (line_no, key) = e
                .span()
                .map(|s| {
                    let start = s.start.min(text.len());
                    let line_start = text[..start].rfind('\n').map(|i| i + 1).unwrap_or(0);
                    let line = text[line_start..].lines().next().unwrap_or("");
                    let key = line
                        .split_once('=')
                        .map(|(k, _)| k.trim().trim_matches('"').to_string())
                        .filter(|k| !k.is_empty() && !msg.contains(k.as_str()));
                    (Some(text[..start].matches('\n').count() + 1), key)
                })
                .unwrap_or((None, None));
            let field = key.map(|k| format!("field `{k}`: ")).unwrap_or_default();
            let at = line_no.map(|l| format!(" (line {l})")).unwrap_or_default();
            Error::config_with(format!("{origin}: {field}{msg}{at}"), e)
                .fix("see config/default.toml for the valid fields and values")
                .paraphrased()
        })?;
        cfg.validate().map_err(|m| Error::config(format!("{origin}: {m}")))?;
        Ok(cfg)
    }

    /// Read and validate a config file.
    pub fn load(path: &Path) -> Result<Self> {
        if path.is_dir() {
            return Err(Error::config(format!(
                "{}: is a folder, not a config file; pass a .toml file with --config",
                path.display()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::config_with(format!("{}: config file not found", path.display()), e)
                .fix("pass an existing file with --config (e.g. config/default.toml)")
                .paraphrased(),
            std::io::ErrorKind::InvalidData => Error::config_with(format!("{}: not a text (UTF-8) file", path.display()), e)
                .fix("pass a TOML config with --config")
                .paraphrased(),
            _ => Error::io("cannot read", path, e),
        })?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// Apply CLI overrides (`--set`, then the shorthand flags, which may not name the same
    /// field) and re-validate.
    pub fn with_overrides(self, o: &Overrides) -> Result<Self> {
        o.check_conflicts()?;
        let mut s = self.with_settings(&o.set)?;
        s.apply_shorthands(o);
        s.validate()
            .map_err(|m| Error::config(format!("command-line override: {m}")))?;
        Ok(s)
    }

    fn apply_shorthands(&mut self, o: &Overrides) {
        if let Some(v) = o.epochs {
            self.epochs = v;
        }
        if let Some(v) = o.lr {
            self.lr = v;
        }
        if let Some(v) = o.batch_size {
            self.batch_size = v;
        }
        if let Some(v) = o.seed {
            self.seed = v;
        }
        if let Some(v) = o.val_size {
            self.val_size = v;
        }
        if o.patience.is_some() {
            self.patience = o.patience;
        }
        if let Some(v) = o.tensorboard {
            self.tensorboard = v;
        }
    }

    /// The same training recipe as `other`, whatever their [`OUTPUT_FIELDS`] say.
    pub fn same_recipe(&self, other: &TrainConfig) -> bool {
        TrainConfig { tensorboard: other.tensorboard, ..self.clone() } == *other
    }

    /// Check every field; the message names the field and the accepted values.
    pub fn validate(&self) -> Result<()> {
        self.first_problem().map_or(Ok(()), |m| Err(Error::config(m)))
    }

    /// The first field outside what the recipe accepts, as a message naming it.
    fn first_problem(&self) -> Option<String> {
        if self.epochs == 0 {
            return Some("field `epochs` must be at least 1".into());
        }
        if !self.lr.is_finite() || self.lr <= 0.0 {
            return Some(format!(
                "field `lr` must be a finite number > 0 (got {})",
                self.lr
            ));
        }
        if self.batch_size == 0 {
            return Some("field `batch_size` must be at least 1".into());
        }
        if self.hidden.is_empty() {
            return Some(
                "field `hidden` must list at least one hidden layer size, e.g. hidden = [256]"
                    .into(),
            );
        }
        if self.hidden.contains(&0) {
            return Some(format!(
                "field `hidden` must not contain 0 (got {:?})",
                self.hidden
            ));
        }
        if self.hidden.iter().any(|&h| h > 1 << 16) {
            return Some(format!(
                "field `hidden` has a layer wider than 65536 (got {:?})",
                self.hidden
            ));
        }
        if !self.init_std.is_finite() || self.init_std < 0.0 {
            return Some(format!(
                "field `init_std` must be a finite number >= 0 (got {})",
                self.init_std
            ));
        }
        for (name, v) in [("momentum", self.momentum), ("dropout", self.dropout)] {
            if !(v.is_finite() && (0.0..1.0).contains(&v)) {
                return Some(format!("field `{name}` must be a number in [0, 1) (got {v})"));
            }
        }
        if !self.weight_decay.is_finite() || self.weight_decay < 0.0 {
            return Some(format!("field `weight_decay` must be a finite number >= 0 (got {})", self.weight_decay));
        }
        match self.patience {
            Some(0) => Some("field `patience` must be at least 1 (epochs without a better validation accuracy before the run stops)".into()),
            Some(p) if self.val_size == 0 => Some(format!(
                "field `patience` ({p}) needs a validation split to watch: set `val_size` too (e.g. val_size = 10000, or --val-size 10000)"
            )),
            _ => None,
        }
    }

    /// Serialise as TOML (the resolved configuration of a run).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a TrainConfig always serialises")
    }

    /// Save atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        self.save_with_header(path, "Resolved configuration of this run (written by `train`).")
    }

    /// Save with a comment line saying where the run came from.
    pub fn save_with_header(&self, path: &Path, header: &str) -> Result<()> {
        let text = format!("# {header}\n{}", self.to_toml());
        atomic_write(path, text.as_bytes()).map_err(|e| Error::io("cannot write", path, e))
    }

    /// A short description of the architecture, e.g. `784-256-10 relu`.
    pub fn describe_model(&self) -> String {
        let mut s = String::from("784");
        for h in &self.hidden {
            s.push_str(&format!("-{h}"));
        }
        format!("{s}-10 {}", self.activation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_equal_the_recipe() {
        let c = TrainConfig::default();
        assert_eq!(c.epochs, 10);
        assert_eq!(c.lr, 0.1);
        assert_eq!(c.batch_size, 256);
        assert_eq!(c.hidden, vec![256]);
        assert_eq!(c.activation, Activation::Relu);
        assert_eq!(c.init_std, 0.01);
        assert!(c.shuffle);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn shipped_default_toml_equals_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
        let c = TrainConfig::load(&path).unwrap();
        assert_eq!(c, TrainConfig::default());
    }

    #[test]
    fn every_shipped_config_is_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|e| e == "toml") {
                TrainConfig::load(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                n += 1;
            }
        }
        assert!(n >= 1);
    }

    #[test]
    fn partial_file_keeps_defaults() {
        let c = TrainConfig::from_toml_str("lr = 0.5\n", "t.toml").unwrap();
        assert_eq!(c.lr, 0.5);
        assert_eq!(c.batch_size, 256);
    }

    fn err(text: &str) -> String {
        TrainConfig::from_toml_str(text, "t.toml").unwrap_err().to_string()
    }

    #[test]
    fn invalid_values_are_rejected_naming_the_field() {
        for (text, field) in [
            ("lr = 0.0", "lr"),
            ("lr = -1.0", "lr"),
            ("lr = nan", "lr"),
            ("lr = inf", "lr"),
            ("batch_size = 0", "batch_size"),
            ("epochs = 0", "epochs"),
            ("hidden = []", "hidden"),
            ("hidden = [256, 0]", "hidden"),
            ("activation = \"softmax\"", "activation"),
            ("learning_rate = 0.1", "learning_rate"),
            ("lr = \"fast\"", "lr"),
            ("epochs = -3", "epochs"),
            ("momentum = 1.0", "momentum"),
            ("dropout = -0.1", "dropout"),
            ("weight_decay = nan", "weight_decay"),
            ("init = \"zeros\"", "init"),
            ("tensorboard = 3", "tensorboard"),
            ("tensorboard = \"yes\"", "tensorboard"),
        ] {
            let m = err(text);
            assert!(m.contains(field), "{text}: {m}");
            assert!(m.starts_with("t.toml"), "{text}: {m}");
            assert!(!m.contains('\n'), "{text}: multi-line message {m:?}");
        }
    }

    #[test]
    fn tensorboard_is_saved_only_when_off_and_is_not_part_of_the_recipe() {
        let on = TrainConfig::default();
        assert!(!on.to_toml().contains("tensorboard"), "{}", on.to_toml());
        let off = TrainConfig { tensorboard: false, ..on.clone() };
        assert!(off.to_toml().contains("tensorboard = false"), "{}", off.to_toml());
        assert_eq!(TrainConfig::from_toml_str(&off.to_toml(), "t.toml").unwrap(), off);
        // A config.toml written before the field existed reads as on.
        assert!(TrainConfig::from_toml_str("lr = 0.1\n", "t.toml").unwrap().tensorboard);
        assert!(on.same_recipe(&off) && off.same_recipe(&on));
        assert!(!on.same_recipe(&TrainConfig { lr: 0.2, ..off.clone() }));
        let o = Overrides { tensorboard: Some(false), ..Default::default() };
        assert!(!on.with_overrides(&o).unwrap().tensorboard);
    }

    #[test]
    fn not_toml_is_rejected() {
        let m = err("this is { not toml");
        assert!(m.contains("t.toml"), "{m}");
    }

    #[test]
    fn overrides_apply_and_validate() {
        let c = TrainConfig::default()
            .with_overrides(&Overrides { epochs: Some(3), lr: Some(0.2), ..Default::default() })
            .unwrap();
        assert_eq!((c.epochs, c.lr), (3, 0.2));
        let e = TrainConfig::default()
            .with_overrides(&Overrides { lr: Some(f64::NAN), ..Default::default() })
            .unwrap_err();
        assert!(e.to_string().contains("lr"));
    }

    #[test]
    fn save_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        let c = TrainConfig { hidden: vec![128, 64], activation: Activation::Tanh, ..TrainConfig::default() };
        c.save(&p).unwrap();
        assert_eq!(TrainConfig::load(&p).unwrap(), c);
    }
}
