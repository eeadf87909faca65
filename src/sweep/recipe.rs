//! A trial's recipe: the study's fixed fields with the swept values set. A leaf module that
//! both the study's checks (`space`) and the drawing of trials (`trials`) use.

use toml::Value;

use crate::config::TrainConfig;

/// The recipe `fixed` with `params` set; `depth` and `width` build `hidden`. Errors name the
/// problem in one line (the caller adds the file and field).
pub fn recipe(fixed: &TrainConfig, params: &[(String, Value)]) -> std::result::Result<TrainConfig, String> {
    let Ok(Value::Table(mut table)) = Value::try_from(fixed) else {
        return Err("the fixed recipe does not serialise".to_string());
    };
    let (mut depth, mut width) = (None, None);
    for (name, v) in params {
        match name.as_str() {
            "depth" => depth = Some(layer_count(name, v)?),
            "width" => width = Some(layer_count(name, v)?),
            _ => {
                table.insert(name.clone(), v.clone());
            }
        }
    }
    if depth.is_some() || width.is_some() {
        let d = depth.unwrap_or(fixed.hidden.len());
        let w = width.unwrap_or_else(|| fixed.hidden.first().copied().unwrap_or(1));
        table.insert("hidden".to_string(), Value::Array(vec![Value::Integer(w as i64); d]));
    }
    let cfg: TrainConfig = Value::Table(table).try_into().map_err(|e: toml::de::Error| {
        let msg = e.message();
        msg.lines().next().unwrap_or(msg).to_string()
    })?;
    cfg.validate().map_err(|e| e.to_string())?;
    Ok(cfg)
}

fn layer_count(name: &str, v: &Value) -> std::result::Result<usize, String> {
    match v.as_integer() {
        Some(n) if (1..=1 << 16).contains(&n) => Ok(n as usize),
        _ => Err(format!("`{name}` must be a whole number from 1 to 65536")),
    }
}
