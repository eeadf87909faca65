#!/usr/bin/env python3
"""Read a run or a study folder the way TensorBoard does, and print what it sees as JSON.

    python scripts/tensorboard_check.py LOGDIR

Needs `pip install tensorboard` (tested with 2.21). LOGDIR is what `tensorboard --logdir` would
get: a run folder (its events are in RUN/tb) or a study folder (its trials and refit below it).
Every folder under LOGDIR that holds an events file is a run, read on its own with TensorBoard's
reader, `event_accumulator.EventAccumulator(folder).Reload()` (so the records' checksums, the
merging of a folder's files and the restart markers are TensorBoard's):

    {"runs": {"<folder relative to LOGDIR>": {
        "scalars": {"<tag>": [[step, value, wall_time], ...]},
        "hparams": null or {"values": {...}, "group": "003", "status": 1 or null,
                            "experiment": {"hparams": [...], "metrics": [...]} or null}}},
     "tab": {"experiment": {"hparams": [...], "metrics": [...]},
             "groups": [{"name": "003", "hparams": {...}, "statuses": [...],
                         "metrics": {"<tag>": value}}]}}

The session start, end and experiment are parsed from the accumulator's `SummaryMetadata(tag)`
with the hparams plugin's own `metadata.parse_*_plugin_data`. "tab" is what the HParams tab
lists: the plugin's GetExperiment and ListSessionGroups handlers over the whole LOGDIR.
"""

import json
import os
import sys

from google.protobuf import json_format
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import metadata


def runs(logdir):
    for folder, _, files in os.walk(logdir):
        if any("tfevents" in f for f in files):
            yield folder


def plain(pb_value):
    """A google.protobuf.Value as a Python value."""
    return json_format.MessageToDict(pb_value)


def read_run(folder):
    acc = event_accumulator.EventAccumulator(folder, size_guidance={event_accumulator.SCALARS: 0, event_accumulator.TENSORS: 0})
    acc.Reload()
    scalars = {tag: [[e.step, e.value, e.wall_time] for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
    hparams = None
    tags = acc.summary_metadata
    if metadata.SESSION_START_INFO_TAG in tags:
        content = acc.SummaryMetadata(metadata.SESSION_START_INFO_TAG).plugin_data.content
        start = metadata.parse_session_start_info_plugin_data(content)
        hparams = {"values": {k: plain(v) for k, v in start.hparams.items()}, "group": start.group_name, "status": None, "experiment": None}
        if metadata.SESSION_END_INFO_TAG in tags:
            end = metadata.parse_session_end_info_plugin_data(acc.SummaryMetadata(metadata.SESSION_END_INFO_TAG).plugin_data.content)
            hparams["status"] = end.status
        if metadata.EXPERIMENT_TAG in tags:
            exp = metadata.parse_experiment_plugin_data(acc.SummaryMetadata(metadata.EXPERIMENT_TAG).plugin_data.content)
            hparams["experiment"] = experiment(exp)
    return {"scalars": scalars, "hparams": hparams}


def experiment(exp):
    return {"hparams": [h.name for h in exp.hparam_infos], "metrics": [m.name.tag for m in exp.metric_infos]}


def tab(logdir):
    """What the HParams tab lists, through the plugin's own request handlers."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import api_pb2, backend_context, get_experiment, list_session_groups

    mux = plugin_event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(logdir)
    mux.Reload()
    tb = base_plugin.TBContext(logdir=logdir, multiplexer=mux, data_provider=data_provider.MultiplexerDataProvider(mux, logdir))
    backend, request = backend_context.Context(tb), context.RequestContext()
    exp = get_experiment.Handler(request, backend, "", api_pb2.GetExperimentRequest()).run()
    asked = api_pb2.ListSessionGroupsRequest(start_index=0, slice_size=1000, allowed_statuses=[0, 1, 2, 3])
    groups = list_session_groups.Handler(request, backend, "", asked).run().session_groups
    return {
        "experiment": experiment(exp),
        "groups": [
            {
                "name": g.name,
                "hparams": {k: plain(v) for k, v in g.hparams.items()},
                "statuses": [s.status for s in g.sessions],
                "metrics": {m.name.tag: m.value for m in g.metric_values},
            }
            for g in groups
        ],
    }


def main():
    logdir = sys.argv[1]
    out = {"runs": {os.path.relpath(f, logdir): read_run(f) for f in sorted(runs(logdir))}, "tab": tab(logdir)}
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
