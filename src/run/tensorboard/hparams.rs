//! TensorBoard's HParams summaries, which let `tensorboard --logdir STUDY` compare a sweep's
//! trials in its HParams tab: in a trial's run, the experiment (the swept fields and the metrics
//! to show), the session's start (the trial's values) and, when the trial ends, the session's
//! end (its status), as `torch.utils.tensorboard.SummaryWriter.add_hparams` writes them. Each is
//! a summary whose metadata carries the hparams plugin's data and whose value is an empty tensor.
//!
//! Each is written once per trial, whatever the number of sessions that train it: TensorBoard
//! keeps the first metadata of a tag, so a second start or end would be ignored at best.

use std::path::Path;

use toml::Value as Toml;

use super::proto::{self, HParamsData, PbKind, PbValue};
use super::{EventWriter, now};
use crate::error::Result;

pub const EXPERIMENT_TAG: &str = "_hparams_/experiment";
pub const SESSION_START_TAG: &str = "_hparams_/session_start_info";
pub const SESSION_END_TAG: &str = "_hparams_/session_end_info";
const PLUGIN_NAME: &str = "hparams";

/// The values an hparam may take: listed, or a range.
#[derive(Debug, Clone, PartialEq)]
pub enum Domain {
    Values(Vec<Toml>),
    Interval(f64, f64),
}

/// A swept field and its domain.
#[derive(Debug, Clone, PartialEq)]
pub struct HParam {
    pub name: String,
    pub domain: Domain,
}

/// How a trial ended, as TensorBoard's `Status` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Trained to its last epoch.
    Success,
    /// Diverged.
    Failure,
    /// Stopped early by the pruner: TensorBoard's statuses have no word for it (unknown).
    Stopped,
}

impl Ending {
    fn status(self) -> i32 {
        match self {
            Ending::Success => proto::STATUS_SUCCESS,
            Ending::Failure => proto::STATUS_FAILURE,
            Ending::Stopped => proto::STATUS_UNKNOWN,
        }
    }
}

/// How TensorBoard types an hparam: numbers, booleans, else text (lists such as `hidden` too).
fn data_type(domain: &Domain) -> i32 {
    let number = |x: &Toml| matches!(x, Toml::Integer(_) | Toml::Float(_));
    match domain {
        Domain::Interval(..) => proto::DATA_TYPE_FLOAT64,
        Domain::Values(v) if v.iter().all(number) => proto::DATA_TYPE_FLOAT64,
        Domain::Values(v) if v.iter().all(Toml::is_bool) => proto::DATA_TYPE_BOOL,
        Domain::Values(_) => proto::DATA_TYPE_STRING,
    }
}

/// A TOML value as an hparam value of type `ty`.
fn value(v: &Toml, ty: i32) -> PbValue {
    let kind = match (v, ty) {
        (Toml::Integer(i), proto::DATA_TYPE_FLOAT64) => PbKind::NumberValue(*i as f64),
        (Toml::Float(x), proto::DATA_TYPE_FLOAT64) => PbKind::NumberValue(*x),
        (Toml::Boolean(b), proto::DATA_TYPE_BOOL) => PbKind::BoolValue(*b),
        (Toml::String(s), _) => PbKind::StringValue(s.clone()),
        (other, _) => PbKind::StringValue(other.to_string()),
    };
    PbValue { kind: Some(kind) }
}

/// The type a value on its own would have (for a value of no declared hparam).
fn own_type(v: &Toml) -> i32 {
    data_type(&Domain::Values(vec![v.clone()]))
}

/// A summary of the hparams plugin: its data in the metadata, an empty float tensor as value.
fn summary(tag: &str, data: HParamsData) -> proto::Value {
    let content = prost::Message::encode_to_vec(&proto::HParamsPluginData { version: 0, data: Some(data) });
    let plugin_data = proto::PluginData { plugin_name: PLUGIN_NAME.to_string(), content };
    let empty = proto::TensorProto { dtype: proto::DT_FLOAT, tensor_shape: Some(proto::TensorShape { dim: vec![proto::Dim { size: 0 }] }) };
    proto::Value {
        tag: tag.to_string(),
        metadata: Some(proto::SummaryMetadata { plugin_data: Some(plugin_data) }),
        value: Some(proto::Kind::Tensor(empty)),
    }
}

/// The experiment: `hparams` and the scalar series `metrics` (tags of the session's own run).
pub fn experiment(hparams: &[HParam], metrics: &[String]) -> proto::Experiment {
    let hparam_infos = hparams
        .iter()
        .map(|p| {
            let ty = data_type(&p.domain);
            let domain = match &p.domain {
                Domain::Values(v) => proto::Domain::DomainDiscrete(proto::ListValue { values: v.iter().map(|x| value(x, ty)).collect() }),
                Domain::Interval(lo, hi) => proto::Domain::DomainInterval(proto::Interval { min_value: *lo, max_value: *hi }),
            };
            proto::HParamInfo { name: p.name.clone(), r#type: ty, domain: Some(domain) }
        })
        .collect();
    let metric_infos = metrics
        .iter()
        .map(|tag| proto::MetricInfo {
            name: Some(proto::MetricName { group: String::new(), tag: tag.clone() }),
            display_name: tag.clone(),
            dataset_type: if tag.starts_with("train/") { 1 } else if tag.starts_with("validation/") { 2 } else { 0 },
        })
        .collect();
    proto::Experiment { description: String::new(), time_created_secs: now(), hparam_infos, metric_infos }
}

/// Write the experiment and the start of the session that trains `values` (named `group` in
/// TensorBoard's table) into a new events file in `tb_dir`, unless a session start is there
/// already (a continued trial). Returns whether it wrote.
pub fn start_session(tb_dir: &Path, hparams: &[HParam], metrics: &[String], values: &[(String, Toml)], group: &str) -> Result<bool> {
    if super::tags_in(tb_dir)?.iter().any(|t| t == SESSION_START_TAG) {
        return Ok(false);
    }
    let wall_time = now();
    let start = proto::SessionStartInfo {
        hparams: values
            .iter()
            .map(|(name, v)| {
                let ty = hparams.iter().find(|p| &p.name == name).map_or_else(|| own_type(v), |p| data_type(&p.domain));
                (name.clone(), value(v, ty))
            })
            .collect(),
        group_name: group.to_string(),
        start_time_secs: wall_time,
    };
    let values = vec![
        summary(EXPERIMENT_TAG, HParamsData::Experiment(experiment(hparams, metrics))),
        summary(SESSION_START_TAG, HParamsData::SessionStartInfo(start)),
    ];
    write(tb_dir, values, wall_time)?;
    Ok(true)
}

/// Write the end of the session into a new events file in `tb_dir`, unless an end is there
/// already. Returns whether it wrote.
pub fn end_session(tb_dir: &Path, ending: Ending) -> Result<bool> {
    if super::tags_in(tb_dir)?.iter().any(|t| t == SESSION_END_TAG) {
        return Ok(false);
    }
    let wall_time = now();
    let end = proto::SessionEndInfo { status: ending.status(), end_time_secs: wall_time };
    write(tb_dir, vec![summary(SESSION_END_TAG, HParamsData::SessionEndInfo(end))], wall_time)?;
    Ok(true)
}

/// One event per summary, at step 0 (before any epoch: a resumed session's restart marker, at a
/// later step, leaves them in place).
fn write(tb_dir: &Path, values: Vec<proto::Value>, wall_time: f64) -> Result<()> {
    let mut w = EventWriter::create(tb_dir)?;
    for v in values {
        w.write(&proto::Event { wall_time, step: 0, what: Some(proto::What::Summary(proto::Summary { value: vec![v] })) })?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::tensorboard::{event_files, read_events};

    fn plugin_data(events: &[proto::Event], tag: &str) -> Option<proto::HParamsPluginData> {
        events.iter().find_map(|e| match &e.what {
            Some(proto::What::Summary(s)) => s.value.iter().find(|v| v.tag == tag).map(|v| {
                let content = &v.metadata.as_ref().unwrap().plugin_data.as_ref().unwrap().content;
                prost::Message::decode(content.as_slice()).unwrap()
            }),
            _ => None,
        })
    }

    #[test]
    fn a_trial_gets_one_start_and_one_end_with_its_typed_values() {
        let dir = tempfile::tempdir().unwrap();
        let hp = [
            HParam { name: "lr".into(), domain: Domain::Interval(0.01, 1.0) },
            HParam { name: "activation".into(), domain: Domain::Values(vec![Toml::String("relu".into()), Toml::String("tanh".into())]) },
            HParam { name: "hidden".into(), domain: Domain::Values(vec![Toml::Array(vec![Toml::Integer(16)])]) },
            HParam { name: "shuffle".into(), domain: Domain::Values(vec![Toml::Boolean(true), Toml::Boolean(false)]) },
        ];
        let values = [
            ("lr".to_string(), Toml::Float(0.5)),
            ("activation".to_string(), Toml::String("tanh".into())),
            ("hidden".to_string(), Toml::Array(vec![Toml::Integer(16)])),
            ("shuffle".to_string(), Toml::Boolean(false)),
        ];
        let metrics = ["validation/accuracy".to_string(), "validation/loss".to_string()];
        assert!(start_session(dir.path(), &hp, &metrics, &values, "003").unwrap());
        assert!(!start_session(dir.path(), &hp, &metrics, &values, "003").unwrap(), "a continued trial starts once");
        assert!(end_session(dir.path(), Ending::Failure).unwrap());
        assert!(!end_session(dir.path(), Ending::Success).unwrap(), "the first end stands");
        let events: Vec<proto::Event> = event_files(dir.path()).iter().flat_map(|f| read_events(f).unwrap()).collect();
        let Some(HParamsData::SessionStartInfo(start)) = plugin_data(&events, SESSION_START_TAG).unwrap().data else { panic!() };
        let kind = |k: &str| start.hparams[k].kind.clone().unwrap();
        assert_eq!(kind("lr"), PbKind::NumberValue(0.5));
        assert_eq!(kind("activation"), PbKind::StringValue("tanh".into()));
        assert_eq!(kind("hidden"), PbKind::StringValue("[16]".into()));
        assert_eq!(kind("shuffle"), PbKind::BoolValue(false));
        assert_eq!(start.group_name, "003");
        let Some(HParamsData::Experiment(exp)) = plugin_data(&events, EXPERIMENT_TAG).unwrap().data else { panic!() };
        let types: Vec<i32> = exp.hparam_infos.iter().map(|h| h.r#type).collect();
        assert_eq!(types, [proto::DATA_TYPE_FLOAT64, proto::DATA_TYPE_STRING, proto::DATA_TYPE_STRING, proto::DATA_TYPE_BOOL]);
        assert_eq!(exp.metric_infos[0].name.as_ref().unwrap().tag, "validation/accuracy");
        let Some(HParamsData::SessionEndInfo(end)) = plugin_data(&events, SESSION_END_TAG).unwrap().data else { panic!() };
        assert_eq!(end.status, proto::STATUS_FAILURE);
    }

    #[test]
    fn the_empty_tensor_is_tensorboards_null_tensor() {
        // `tensorboard.plugins.hparams.metadata.NULL_TENSOR.SerializeToString()`.
        let Some(proto::Kind::Tensor(t)) = summary("t", HParamsData::SessionEndInfo(proto::SessionEndInfo::default())).value else { panic!() };
        assert_eq!(prost::Message::encode_to_vec(&t), b"\x08\x01\x12\x02\x12\x00");
    }
}
