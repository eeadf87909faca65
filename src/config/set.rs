//! `--set FIELD=VALUE`: any recipe field from the command line. The value is read as a TOML
//! value (`lr=0.05`, `hidden=[512,256]`, `shuffle=false`), or as a string when it is not one
//! (`activation=tanh`), and the recipe is then checked as a config file is, with the same
//! field names in its messages.

use toml::Value;

use super::{FIELDS, TrainConfig};
use crate::error::{Error, Result};

/// One `--set FIELD=VALUE`, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub field: String,
    pub value: Value,
    /// `FIELD=VALUE` as given, for messages and for commands that pass it on.
    pub text: String,
}

impl Setting {
    /// The argument as messages show it: on one line, control characters escaped.
    pub fn shown(&self) -> String {
        shown(&self.text)
    }
}

fn shown(arg: &str) -> String {
    arg.chars().flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] }).collect()
}

/// Parse every `--set` argument; a malformed one, an unknown field or a field named twice is
/// refused with one line that says what to write instead.
pub fn parse_settings(args: &[String]) -> Result<Vec<Setting>> {
    let mut out: Vec<Setting> = Vec::new();
    for arg in args {
        let s = parse_one(arg)?;
        if let Some(first) = out.iter().find(|o| o.field == s.field) {
            return Err(Error::config(format!(
                "--set {} and --set {} both set `{}`; pass it once",
                first.shown(), s.shown(), s.field
            )));
        }
        out.push(s);
    }
    Ok(out)
}

fn parse_one(arg: &str) -> Result<Setting> {
    let Some((field, value)) = arg.split_once('=') else {
        return Err(Error::config(format!(
            "--set {}: not FIELD=VALUE; write e.g. --set lr=0.05 or --set hidden=[512,256] (fields: {})",
            shown(arg),
            FIELDS.join(", ")
        )));
    };
    let field = field.trim();
    if !FIELDS.contains(&field) {
        return Err(Error::config(format!(
            "--set {}: unknown field `{}`; the recipe's fields are {} (see config/default.toml)",
            shown(arg),
            shown(field),
            FIELDS.join(", ")
        )));
    }
    Ok(Setting { field: field.to_string(), value: toml_value(value.trim()), text: arg.to_string() })
}

/// `text` as one TOML value; a bare word (or anything else that is not a single TOML value)
/// is taken as a string, which the field's own check then accepts or names.
fn toml_value(text: &str) -> Value {
    let parsed = toml::from_str::<toml::Table>(&format!("v = {text}"));
    match parsed {
        Ok(mut t) if t.len() == 1 => t.remove("v").unwrap_or_else(|| Value::String(text.to_string())),
        _ => Value::String(text.to_string()),
    }
}

impl TrainConfig {
    /// The recipe with `settings` applied, checked as a config file is (one-line errors that
    /// start with the `--set` at fault).
    pub fn with_settings(self, settings: &[Setting]) -> Result<Self> {
        if settings.is_empty() {
            return Ok(self);
        }
        let Ok(Value::Table(mut table)) = Value::try_from(&self) else {
            return Err(Error::failure("internal: the recipe does not serialise"));
        };
        for s in settings {
            table.insert(s.field.clone(), s.value.clone());
            // Each value is checked on its own first, so that a wrong type names its --set.
            Value::Table(table.clone())
                .try_into::<TrainConfig>()
                .map_err(|e| Error::config(format!("--set {}: field `{}`: {}; see config/default.toml for the valid values", s.shown(), s.field, first_line(e.message()))))?;
        }
        let cfg: TrainConfig = Value::Table(table).try_into().map_err(|e: toml::de::Error| Error::config(format!("--set: {}", first_line(e.message()))))?;
        cfg.validate().map_err(|e| {
            let msg = e.to_string();
            let at = settings.iter().find(|s| msg.contains(&format!("`{}`", s.field))).map_or("--set".to_string(), |s| format!("--set {}", s.shown()));
            Error::config(format!("{at}: {msg}"))
        })?;
        Ok(cfg)
    }

    /// A field's value as TOML text (`none` for an unset optional field), for messages.
    pub fn field_text(&self, field: &str) -> String {
        match Value::try_from(self) {
            Ok(Value::Table(t)) => t.get(field).map_or_else(|| default_text(field), |v| v.to_string()),
            _ => String::new(),
        }
    }
}

/// What a field left out of the TOML text stands for.
fn default_text(field: &str) -> String {
    match field {
        "patience" => "none".to_string(),
        "val_size" => "0".to_string(),
        "tensorboard" => "true".to_string(),
        _ => String::new(),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Activation, Overrides};

    fn set(args: &[&str]) -> Result<TrainConfig> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        TrainConfig::default().with_settings(&parse_settings(&args)?)
    }

    fn err(args: &[&str]) -> String {
        let e = set(args).unwrap_err();
        assert!(matches!(e, Error::Config(_)) && e.exit_code() == 2, "{e:?}");
        let m = e.to_string();
        assert!(!m.contains('\n'), "{m:?}");
        m
    }

    #[test]
    fn values_are_toml_or_bare_strings() {
        let c = set(&["hidden=[512,256]", "activation=tanh", "lr=0.05", "shuffle=false", "init=\"xavier_uniform\"", "epochs = 3"]).unwrap();
        assert_eq!(c.hidden, vec![512, 256]);
        assert_eq!(c.activation, Activation::Tanh);
        assert_eq!((c.lr, c.shuffle, c.epochs), (0.05, false, 3));
        assert_eq!(c.init, crate::config::Init::XavierUniform);
        // An integer where the file takes a float is accepted, as in a config file.
        assert_eq!(set(&["lr=1"]).unwrap().lr, 1.0);
        let c = set(&["val_size=100", "patience=2", "tensorboard=false"]).unwrap();
        assert_eq!((c.val_size, c.patience, c.tensorboard), (100, Some(2), false));
    }

    #[test]
    fn bad_settings_get_one_line_naming_the_field_and_the_fix() {
        for (args, want) in [
            (&["lr"][..], "--set lr: not FIELD=VALUE; write e.g. --set lr=0.05"),
            (&["learning_rate=0.1"], "--set learning_rate=0.1: unknown field `learning_rate`; the recipe's fields are epochs, lr,"),
            (&["lr=fast"], "--set lr=fast: field `lr`: invalid type: string \"fast\", expected f64"),
            (&["lr=-1"], "--set lr=-1: field `lr` must be a finite number > 0 (got -1)"),
            (&["hidden=512,256"], "--set hidden=512,256: field `hidden`: invalid type: string \"512,256\", expected a sequence"),
            (&["hidden=[]"], "--set hidden=[]: field `hidden` must list at least one hidden layer size"),
            (&["activation=softmax"], "--set activation=softmax: field `activation`: unknown variant `softmax`"),
            (&["epochs=-3"], "--set epochs=-3: field `epochs`:"),
            (&["lr=0.1", "lr=0.2"], "--set lr=0.1 and --set lr=0.2 both set `lr`; pass it once"),
            (&["patience=3"], "--set patience=3: field `patience` (3) needs a validation split to watch: set `val_size` too"),
            (&["val_size=10", "patience=0"], "--set patience=0: field `patience` must be at least 1"),
            (&["lr=0.1\nepochs = 5"], "--set lr=0.1\\nepochs = 5: field `lr`: invalid type: string"),
        ] {
            let m = err(args);
            assert!(m.contains(want), "{args:?}\n  gave: {m}\n  want: {want}");
        }
    }

    #[test]
    fn shorthands_and_set_may_not_name_the_same_field() {
        let set = parse_settings(&["lr=0.05".to_string(), "hidden=[64]".to_string()]).unwrap();
        let both = Overrides { set: set.clone(), lr: Some(0.2), ..Default::default() };
        let e = TrainConfig::default().with_overrides(&both).unwrap_err().to_string();
        assert_eq!(e, "--set lr=0.05 and --lr both set `lr`; pass one of them");
        let apart = Overrides { set, epochs: Some(2), ..Default::default() };
        let c = TrainConfig::default().with_overrides(&apart).unwrap();
        assert_eq!((c.lr, c.hidden.clone(), c.epochs), (0.05, vec![64], 2));
    }

    #[test]
    fn field_text_shows_what_a_run_has() {
        let c = TrainConfig::default();
        assert_eq!((c.field_text("hidden"), c.field_text("patience"), c.field_text("lr")), ("[256]".into(), "none".into(), "0.1".into()));
    }

    #[test]
    fn every_field_is_listed_and_every_listed_field_is_one() {
        let full = TrainConfig { val_size: 1, patience: Some(1), tensorboard: false, ..TrainConfig::default() };
        let Ok(Value::Table(t)) = Value::try_from(&full) else { panic!() };
        let mut keys: Vec<&str> = t.keys().map(String::as_str).collect();
        let mut listed = FIELDS.to_vec();
        keys.sort_unstable();
        listed.sort_unstable();
        assert_eq!(keys, listed, "FIELDS must list every field of the recipe");
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn recipe() -> impl Strategy<Value = TrainConfig> {
            (
                1usize..50,
                1u32..100_000,
                1usize..2048,
                any::<u32>(),
                prop::collection::vec(1usize..2048, 1..4),
                0usize..3,
                (any::<bool>(), 0usize..3, 0u32..99, 0usize..20_000, prop::option::of(1usize..20), any::<bool>()),
            )
                .prop_map(|(epochs, lr, batch_size, seed, hidden, act, (shuffle, init, momentum, val_size, patience, tensorboard))| TrainConfig {
                    epochs,
                    lr: lr as f64 / 10_000.0,
                    batch_size,
                    seed: seed as u64,
                    hidden,
                    activation: Activation::ALL[act],
                    shuffle,
                    init: [crate::config::Init::Normal, crate::config::Init::XavierUniform, crate::config::Init::KaimingNormal][init],
                    momentum: momentum as f64 / 100.0,
                    val_size: if patience.is_some() { val_size.max(1) } else { val_size },
                    patience,
                    tensorboard,
                    ..TrainConfig::default()
                })
        }

        /// `FIELD=VALUE` for every field of `c`, the value as TOML writes it (strings bare).
        fn as_settings(c: &TrainConfig) -> Vec<String> {
            let Ok(Value::Table(t)) = Value::try_from(c) else { panic!() };
            t.iter()
                .map(|(k, v)| match v {
                    Value::String(s) => format!("{k}={s}"),
                    v => format!("{k}={v}"),
                })
                .collect()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(128))]

            /// Any valid recipe, given field by field with --set, is that recipe.
            #[test]
            fn every_recipe_round_trips_through_set(c in recipe()) {
                let args = as_settings(&c);
                let got = TrainConfig::default().with_settings(&parse_settings(&args).unwrap()).unwrap();
                prop_assert_eq!(got, c);
            }

            /// Whatever the text, --set answers with a recipe or a one-line config error that
            /// starts with the --set at fault; never a panic.
            #[test]
            fn any_text_gets_a_recipe_or_one_line(field in "(lr|epochs|hidden|activation|patience|val_size|seed|[a-z_]{1,10})", value in "[-\\[\\]0-9a-z.,\" =]{0,14}") {
                let arg = format!("{field}={value}");
                match set(&[arg.as_str()]) {
                    Ok(c) => prop_assert!(c.validate().is_ok()),
                    Err(e) => {
                        let m = e.to_string();
                        prop_assert!(matches!(e, Error::Config(_)), "{:?}", e);
                        prop_assert!(m.starts_with(&format!("--set {arg}")) && !m.contains('\n'), "{}", m);
                    }
                }
            }

            /// A later --set of another field never changes an earlier one.
            #[test]
            fn settings_touch_only_their_field(c in recipe(), lr in 1u32..1000) {
                let mut args = as_settings(&c);
                args.retain(|a| !a.starts_with("lr="));
                args.push(format!("lr={}", lr as f64 / 1000.0));
                let got = TrainConfig::default().with_settings(&parse_settings(&args).unwrap()).unwrap();
                prop_assert_eq!(got, TrainConfig { lr: lr as f64 / 1000.0, ..c });
            }
        }
    }
}
