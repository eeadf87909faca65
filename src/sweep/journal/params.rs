//! A study's swept fields as Optuna's distributions: `log_uniform` and `uniform` ranges are
//! `FloatDistribution` (log true/false), `int_log_uniform` an `IntDistribution` (log), and listed
//! values a `CategoricalDistribution` of the values (a list of layers by its text, `512-256`).

use serde_json::Value as Json;
use toml::Value;

use crate::sweep::space::{Domain, Param};
use crate::sweep::trials::value_text;

/// A listed value as a categorical choice.
fn choice(v: &Value) -> Json {
    match v {
        Value::String(s) => Json::from(s.as_str()),
        Value::Integer(i) => Json::from(*i),
        Value::Float(f) => Json::from(*f),
        Value::Boolean(b) => Json::from(*b),
        other => Json::from(value_text(other)),
    }
}

/// Python's `json.dumps` of a plain value (its `, ` and `: ` separators).
fn py(v: &Json) -> String {
    match v {
        Json::Array(a) => format!("[{}]", a.iter().map(py).collect::<Vec<_>>().join(", ")),
        other => other.to_string(),
    }
}

/// `distribution_to_json` of the field's distribution, as Optuna writes it.
pub fn distribution(d: &Domain) -> String {
    let float = |low: f64, high: f64, log: bool| {
        format!(r#"{{"name": "FloatDistribution", "attributes": {{"step": null, "low": {}, "high": {}, "log": {log}}}}}"#, Json::from(low), Json::from(high))
    };
    match d {
        Domain::Values(values) => {
            let choices = Json::Array(values.iter().map(choice).collect());
            format!(r#"{{"name": "CategoricalDistribution", "attributes": {{"choices": {}}}}}"#, py(&choices))
        }
        Domain::Uniform(a, b) => float(*a, *b, false),
        Domain::LogUniform(a, b) => float(*a, *b, true),
        Domain::IntLogUniform(a, b) => format!(r#"{{"name": "IntDistribution", "attributes": {{"log": true, "step": 1, "low": {a}, "high": {b}}}}}"#),
    }
}

fn number(v: &Value) -> Option<f64> {
    v.as_float().or_else(|| v.as_integer().map(|i| i as f64))
}

/// The value in Optuna's internal form: a choice's index, or the number.
pub fn internal(d: &Domain, v: &Value) -> Option<f64> {
    match d {
        Domain::Values(values) => values.iter().position(|c| c == v).map(|i| i as f64),
        _ => number(v),
    }
}

/// The value from its internal form.
pub fn external(d: &Domain, x: f64) -> Option<Value> {
    match d {
        Domain::Values(values) => (x >= 0.0 && x.fract() == 0.0).then(|| values.get(x as usize).cloned()).flatten(),
        Domain::Uniform(..) | Domain::LogUniform(..) => Some(Value::Float(x)),
        Domain::IntLogUniform(..) => (x.fract() == 0.0).then_some(Value::Integer(x as i64)),
    }
}

/// A value given from outside (Optuna's `fixed_params`, `--enqueue`) as the field's value, or
/// why it is not one of the space's.
pub fn from_outside(p: &Param, v: &Json) -> Result<Value, String> {
    let outside = |what: String| Err(format!("`{}` = {v} is {what}", p.name));
    match &p.domain {
        Domain::Values(values) => {
            let same = |c: &Value| {
                let cj = choice(c);
                cj == *v || matches!((cj.as_f64(), v.as_f64()), (Some(a), Some(b)) if a == b) || v.as_str() == Some(value_text(c).as_str())
            };
            match values.iter().find(|c| same(c)) {
                Some(c) => Ok(c.clone()),
                None => outside(format!("not one of its values ({})", values.iter().map(value_text).collect::<Vec<_>>().join(", "))),
            }
        }
        Domain::Uniform(a, b) | Domain::LogUniform(a, b) => match v.as_f64() {
            Some(x) if (*a..=*b).contains(&x) => Ok(Value::Float(x)),
            _ => outside(format!("outside its range [{a}, {b}]")),
        },
        Domain::IntLogUniform(a, b) => match v.as_f64() {
            Some(x) if x.fract() == 0.0 && (*a as f64..=*b as f64).contains(&x) => Ok(Value::Integer(x as i64)),
            _ => outside(format!("not an integer in [{a}, {b}]")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(name: &str, domain: Domain) -> Param {
        Param { name: name.into(), domain }
    }

    #[test]
    fn distributions_are_written_as_optuna_writes_them() {
        assert_eq!(
            distribution(&Domain::LogUniform(0.01, 1.0)),
            r#"{"name": "FloatDistribution", "attributes": {"step": null, "low": 0.01, "high": 1.0, "log": true}}"#
        );
        assert_eq!(distribution(&Domain::IntLogUniform(16, 1024)), r#"{"name": "IntDistribution", "attributes": {"log": true, "step": 1, "low": 16, "high": 1024}}"#);
        let layers = Domain::Values(vec![Value::Array(vec![Value::Integer(512), Value::Integer(256)]), Value::String("relu".into()), Value::Float(0.1)]);
        assert_eq!(distribution(&layers), r#"{"name": "CategoricalDistribution", "attributes": {"choices": ["512-256", "relu", 0.1]}}"#);
        assert_eq!(internal(&layers, &Value::String("relu".into())), Some(1.0));
        assert_eq!(external(&layers, 0.0), Some(Value::Array(vec![Value::Integer(512), Value::Integer(256)])));
        assert_eq!(external(&Domain::IntLogUniform(1, 9), 4.0), Some(Value::Integer(4)));
    }

    #[test]
    fn outside_values_are_checked_against_the_space() {
        let layers = param("hidden", Domain::Values(vec![Value::Array(vec![Value::Integer(64)]), Value::Array(vec![Value::Integer(32), Value::Integer(16)])]));
        assert_eq!(from_outside(&layers, &Json::from("32-16")).unwrap(), Value::Array(vec![Value::Integer(32), Value::Integer(16)]));
        assert!(from_outside(&layers, &Json::from("8")).unwrap_err().contains("not one of its values (64, 32-16)"));
        let lr = param("lr", Domain::LogUniform(0.01, 1.0));
        assert_eq!(from_outside(&lr, &Json::from(0.1)).unwrap(), Value::Float(0.1));
        assert!(from_outside(&lr, &Json::from(2.0)).unwrap_err().contains("outside its range [0.01, 1]"));
        let width = param("width", Domain::IntLogUniform(16, 1024));
        assert_eq!(from_outside(&width, &Json::from(256)).unwrap(), Value::Integer(256));
        assert!(from_outside(&width, &Json::from(2.5)).is_err());
        let grid = param("lr", Domain::Values(vec![Value::Float(0.1), Value::Float(0.2)]));
        assert_eq!(from_outside(&grid, &Json::from(0.2)).unwrap(), Value::Float(0.2));
    }
}
