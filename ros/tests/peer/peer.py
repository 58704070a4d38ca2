#!/usr/bin/env python3
"""Independent DDS peer for the pag-ros node, built on Eclipse Cyclone DDS (Python binding,
`pip install cyclonedds==11.0.1`; no ROS installation).

  peer.py interop --domain D --cases DIR   publish the cases in DIR/cases.json, check every output
  peer.py flood   --domain D --count N     malformed images + battery states, then a good image
  peer.py latency --domain D --frames N    publish → all outputs received, minus inference time

Exit status 0 when every check passed; failures are printed as `FAIL: ...`.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
from cyclonedds.core import Policy, Qos, ReadCondition, SampleState, InstanceState, ViewState, WaitSet
from cyclonedds.domain import DomainParticipant
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic
from cyclonedds.util import duration

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rosmsgs import (BatteryState, BrokenImage, CameraInfo, DiagnosticArray, Header, Image,  # noqa: E402
                     Time)

NS = "/pag"
OUTPUT_IMAGES = {  # topic → (encoding, channels, bytes per channel)
    "labels": ("mono8", 1, 1),
    "segmentation": ("rgb8", 3, 1),
    "depth": ("32FC1", 1, 4),
    "normals": ("32FC3", 3, 4),
    "ponder": ("mono8", 1, 1),
}
SENSOR_QOS = Qos(Policy.Reliability.BestEffort, Policy.History.KeepLast(5), Policy.Durability.Volatile)
RELIABLE_QOS = Qos(Policy.Reliability.Reliable(duration(seconds=1)), Policy.History.KeepLast(10),
                   Policy.Durability.Volatile)

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)
    return cond


def dds_topic(name):
    return "rt" + name


class Peer:
    def __init__(self, domain, image_reliable=False):
        self.dp = DomainParticipant(domain)
        self.readers = {}
        for name in OUTPUT_IMAGES:
            self.readers[name] = DataReader(self.dp, Topic(self.dp, dds_topic(f"{NS}/{name}"), Image), qos=RELIABLE_QOS)
        self.readers["camera_info"] = DataReader(self.dp, Topic(self.dp, dds_topic(f"{NS}/camera_info"), CameraInfo),
                                                 qos=RELIABLE_QOS)
        self.readers["frame_timing"] = DataReader(self.dp, Topic(self.dp, dds_topic(f"{NS}/frame_timing"),
                                                                 DiagnosticArray), qos=RELIABLE_QOS)
        self.diag_reader = DataReader(self.dp, Topic(self.dp, "rt/diagnostics", DiagnosticArray), qos=RELIABLE_QOS)
        self.image_topic = Topic(self.dp, "rt/camera/image_raw", Image)
        self.image_writer = DataWriter(self.dp, self.image_topic, qos=SENSOR_QOS)
        self.info_writer = DataWriter(self.dp, Topic(self.dp, "rt/camera/camera_info", CameraInfo), qos=SENSOR_QOS)
        self.battery_writer = DataWriter(self.dp, Topic(self.dp, "rt/battery_state", BatteryState), qos=RELIABLE_QOS)
        self.waitset = WaitSet(self.dp)
        for r in list(self.readers.values()) + [self.diag_reader]:
            self.waitset.attach(ReadCondition(r, SampleState.Any | ViewState.Any | InstanceState.Any))
        self.received = {}  # (topic, sec, nanosec) → (msg, arrival time)
        self.last_diag = None

    def poll(self):
        now = time.perf_counter()
        for name, r in self.readers.items():
            for m in r.take(N=64):
                key = (name, m.header.stamp.sec, m.header.stamp.nanosec)
                self.received.setdefault(key, (m, now))
        for m in self.diag_reader.take(N=64):
            if m.status and m.status[0].name == "pag: inference":
                self.last_diag = {kv.key: kv.value for kv in m.status[0].values}
                self.last_diag["_level"] = m.status[0].level
                self.last_diag["_message"] = m.status[0].message

    def wait(self, seconds):
        """Blocks until some reader has data (or `seconds` pass), then polls."""
        self.waitset.wait(duration(microseconds=max(1, int(seconds * 1e6))))
        self.poll()

    def outputs_for(self, sec, nanosec, topics):
        got = {t: self.received.get((t, sec, nanosec)) for t in topics}
        return got if all(v is not None for v in got.values()) else None

    def wait_diag(self, pred, timeout):
        end = time.time() + timeout
        while time.time() < end:
            self.poll()
            if self.last_diag is not None and pred(self.last_diag):
                return self.last_diag
            time.sleep(0.05)
        return None


def image_msg(rgb, encoding, sec, nanosec, frame_id, pad=0):
    """An Image of the H×W×3 `rgb` array in `encoding`, rows padded by `pad` bytes."""
    h, w, _ = rgb.shape
    if encoding == "rgb8":
        px = rgb
    elif encoding == "bgr8":
        px = rgb[:, :, ::-1]
    elif encoding == "rgba8":
        px = np.concatenate([rgb, np.full((h, w, 1), 255, np.uint8)], axis=2)
    elif encoding == "bgra8":
        px = np.concatenate([rgb[:, :, ::-1], np.full((h, w, 1), 7, np.uint8)], axis=2)
    elif encoding == "mono8":
        px = rgb[:, :, :1]
    else:
        raise ValueError(encoding)
    rows = px.reshape(h, -1)
    if pad:
        rows = np.concatenate([rows, np.zeros((h, pad), np.uint8)], axis=1)
    rows = np.ascontiguousarray(rows)
    return Image(header=Header(stamp=Time(sec, nanosec), frame_id=frame_id), height=h, width=w, encoding=encoding,
                 is_bigendian=0, step=rows.shape[1], data=rows.tobytes())


def camera_info_msg(w, h, sec, nanosec, frame_id, f=None):
    f = f or 0.5 * w / math.tan(math.radians(35.0))
    cx, cy = w / 2 - 0.5, h / 2 - 0.5
    return CameraInfo(header=Header(stamp=Time(sec, nanosec), frame_id=frame_id), height=h, width=w,
                      distortion_model="plumb_bob", d=[0.0] * 5, k=[f, 0, cx, 0, f, cy, 0, 0, 1],
                      r=[1, 0, 0, 0, 1, 0, 0, 0, 1], p=[f, 0, cx, 0, 0, f, cy, 0, 0, 0, 1, 0])


def decode(msg, encoding):
    dtype = np.uint8 if encoding in ("mono8", "rgb8") else np.dtype("<f4")
    ch = {"mono8": 1, "rgb8": 3, "32FC1": 1, "32FC3": 3}[encoding]
    a = np.frombuffer(msg.data, dtype=dtype)
    return a.reshape(msg.height, msg.width, ch) if ch > 1 else a.reshape(msg.height, msg.width)


def set_battery(peer, percentage, expect, timeout=20.0):
    """Publishes `percentage` until the diagnostics show `battery_fraction == expect`."""
    end = time.time() + timeout
    while time.time() < end:
        peer.battery_writer.write(BatteryState(percentage=percentage, present=True, location="test"))
        if peer.wait_diag(lambda d: d.get("battery_fraction") == expect, 1.5):
            return True
    return False


def cmd_interop(args):
    spec = json.load(open(os.path.join(args.cases, "cases.json")))
    peer = Peer(args.domain)
    topics = list(OUTPUT_IMAGES) + ["camera_info"]
    for i, case in enumerate(spec["cases"]):
        rgb = np.load(os.path.join(args.cases, case["file"]))
        sec, nanosec, frame_id = 1_700_000_000 + i, 123_456_789 + i, f"cam_{i}"
        h, w, _ = rgb.shape
        out_shape = (h, w) if spec["output_hw"] == "input" else tuple(spec["output_hw"])
        msg = image_msg(rgb, case["encoding"], sec, nanosec, frame_id, case.get("pad", 0))
        info = camera_info_msg(w, h, sec, nanosec, frame_id)
        end, got = time.time() + args.timeout, None
        while time.time() < end and got is None:
            peer.info_writer.write(info)
            time.sleep(0.02)
            peer.image_writer.write(msg)
            t = time.time()
            while time.time() < t + 0.5 and got is None:
                peer.poll()
                got = peer.outputs_for(sec, nanosec, topics)
                time.sleep(0.01)
        if not check(got is not None, f"case {i} ({case['encoding']} {w}x{h}): outputs not all received; "
                                      f"have {[k[0] for k in peer.received if k[1:] == (sec, nanosec)]}"):
            continue
        for t, (enc, ch, bpc) in OUTPUT_IMAGES.items():
            m = got[t][0]
            check(m.encoding == enc, f"case {i} {t}: encoding {m.encoding} != {enc}")
            check((m.height, m.width) == out_shape, f"case {i} {t}: size {m.height}x{m.width} != {out_shape}")
            check(m.step == m.width * ch * bpc, f"case {i} {t}: step {m.step}")
            check(len(m.data) == m.step * m.height, f"case {i} {t}: data length {len(m.data)}")
            check(m.is_bigendian == 0, f"case {i} {t}: is_bigendian {m.is_bigendian}")
            check(m.header.frame_id == frame_id, f"case {i} {t}: frame_id {m.header.frame_id!r}")
            a = decode(m, enc)
            np.save(os.path.join(args.cases, f"out_{i}_{t}.npy"), a)
        depth = decode(got["depth"][0], "32FC1")
        check(not np.isinf(depth).any(), f"case {i}: depth has infinities")
        finite = depth[np.isfinite(depth)]
        check(finite.size == 0 or finite.min() > 0, f"case {i}: non-positive depth that is not NaN")
        if spec.get("max_depth_m"):
            check(finite.size == 0 or finite.max() <= spec["max_depth_m"], f"case {i}: depth beyond max_depth_m")
        normals = decode(got["normals"][0], "32FC3")
        norm = np.linalg.norm(normals, axis=2)
        check(np.nanmax(np.abs(norm - 1)) < 1e-3, f"case {i}: normals not unit (max |n|-1 = {np.nanmax(np.abs(norm - 1))})")
        labels = decode(got["labels"][0], "mono8")
        check(labels.max() < spec["num_classes"], f"case {i}: label {labels.max()} out of range")
        ci = got["camera_info"][0]
        check(ci.header.frame_id == frame_id, f"case {i} camera_info: frame_id {ci.header.frame_id!r}")
        check((ci.height, ci.width) == out_shape, f"case {i} camera_info: size {ci.height}x{ci.width}")
        sx = ci.width / w
        check(abs(ci.k[0] - info.k[0] * sx) < 1e-6 and abs(ci.k[2] - ((info.k[2] + 0.5) * sx - 0.5)) < 1e-6,
              f"case {i} camera_info: K not scaled: {list(ci.k)}")
        print(f"case {i}: {case['encoding']} {w}x{h} pad {case.get('pad', 0)}: outputs ok, "
              f"depth NaNs {int(np.isnan(depth).sum())}", flush=True)

    # Battery: a proper fraction, a 0–100 percentage (rescaled and counted), NaN (unknown).
    check(set_battery(peer, 0.8, "0.800"), "battery 0.8 not reflected in diagnostics")
    check(set_battery(peer, 55.0, "0.550"), "battery 55 (percent) not read as 0.55")
    check(set_battery(peer, float("nan"), "unknown"), "battery NaN not read as unknown")
    d = peer.last_diag or {}
    check(int(d.get("battery_percent_scaled", 0)) >= 1, "battery_percent_scaled not counted")
    check(int(d.get("battery_unknown", 0)) >= 1, "battery_unknown not counted")
    for key in ["model", "compute_mode", "rho", "latency_p50_ms", "latency_p99_ms", "deadline_misses",
                "frames_dropped", "frames_rejected", "macs_executed", "macs_dense"]:
        check(key in d, f"diagnostics lack {key}")
    json.dump(d, open(os.path.join(args.cases, "diagnostics.json"), "w"), indent=1)
    print("diagnostics:", json.dumps({k: d.get(k) for k in ["model", "compute_mode", "frames_processed",
                                                           "latency_p50_ms", "inference_p50_ms"]}), flush=True)


def bad_images(n):
    """`n` malformed images cycling through every kind of wrongness; yields (kind, msg)."""
    hdr = Header(stamp=Time(1, 0), frame_id="bad")
    good = np.zeros((24, 32, 3), np.uint8).tobytes()
    kinds = [
        ("encoding", Image(header=hdr, height=24, width=32, encoding="rgb16", step=192, data=good * 2)),
        ("encoding", Image(header=hdr, height=24, width=32, encoding="", step=96, data=good)),
        ("step", Image(header=hdr, height=24, width=32, encoding="rgb8", step=95, data=good)),
        ("truncated", Image(header=hdr, height=24, width=32, encoding="rgb8", step=96, data=good[:-1])),
        ("truncated", Image(header=hdr, height=24, width=32, encoding="bgra8", step=128, data=good)),
        ("size_mismatch", Image(header=hdr, height=24, width=32, encoding="mono8", step=32, data=good)),
        ("zero_size", Image(header=hdr, height=0, width=32, encoding="rgb8", step=96, data=b"")),
        ("zero_size", Image(header=hdr, height=24, width=0, encoding="rgb8", step=0, data=b"")),
        ("too_large", Image(header=hdr, height=100000, width=100000, encoding="mono8", step=100000, data=good)),
        ("too_large", Image(header=hdr, height=1, width=16385, encoding="mono8", step=16385, data=bytes(16385))),
        ("too_large", Image(header=hdr, height=4294967295, width=4294967295, encoding="rgba8", step=4294967295,
                            data=b"x")),
    ]
    for i in range(n):
        yield kinds[i % len(kinds)]


def cmd_flood(args):
    peer = Peer(args.domain)
    broken_writer = DataWriter(peer.dp, Topic(peer.dp, "rt/camera/image_raw", BrokenImage), qos=SENSOR_QOS)
    # Wait until the node is there (its diagnostics arrive) so that nothing is lost to discovery.
    check(peer.wait_diag(lambda d: True, 30) is not None, "no diagnostics from the node")

    # 1. Every kind once, each resent until the node's diagnostics count it: deterministic,
    #    whatever the machine's speed (the node's best-effort keep-last-5 reader may drop samples
    #    that arrive while it is busy).
    sent = {}
    kinds = list(bad_images(11)) + [("undecodable", None)]
    for kind, msg in kinds:
        key = f"rejected_{kind}"
        before = int((peer.last_diag or {}).get(key, 0))
        ok = False
        for _ in range(50):
            if msg is None:
                broken_writer.write(BrokenImage(header=Header(stamp=Time(2, 0), frame_id="broken"), height=5))
            else:
                peer.image_writer.write(msg)
            sent[kind] = sent.get(kind, 0) + 1
            if peer.wait_diag(lambda d: int(d.get(key, 0)) > before, 1.0):
                ok = True
                break
        check(ok, f"a {kind} image was never counted as {key}")
    for p in [-3.0, float("inf"), 1e9, float("-inf")]:
        before = int((peer.last_diag or {}).get("battery_invalid", 0))
        ok = False
        for _ in range(50):
            peer.battery_writer.write(BatteryState(percentage=p))
            if peer.wait_diag(lambda d: int(d.get("battery_invalid", 0)) > before, 1.0):
                ok = True
                break
        check(ok, f"battery percentage {p} was never counted as invalid")

    # 2. The flood: thousands of malformed images as fast as the peer can write them. Only what
    #    must hold regardless of timing is checked: the node survives, counts no more than was
    #    sent, and processes the next good image.
    t0 = time.time()
    for i, (kind, msg) in enumerate(bad_images(args.count)):
        peer.image_writer.write(msg)
        sent[kind] = sent.get(kind, 0) + 1
        if i % 10 == 0:
            broken_writer.write(BrokenImage(header=Header(stamp=Time(2, 0), frame_id="broken"), height=5))
            sent["undecodable"] = sent.get("undecodable", 0) + 1
    for p in [float("nan"), 42.0, -3.0, float("inf"), 1e9, float("-inf")]:
        peer.battery_writer.write(BatteryState(percentage=p))
    print(f"sent {sum(sent.values())} malformed images in {time.time() - t0:.1f} s: {sent}", flush=True)
    # Then good images until one is processed.
    rgb = (np.arange(240 * 320 * 3) % 251).astype(np.uint8).reshape(240, 320, 3)
    msg = image_msg(rgb, "rgb8", 77, 7, "good")
    got, end = None, time.time() + args.timeout
    while got is None and time.time() < end:
        peer.image_writer.write(msg)
        t = time.time()
        while got is None and time.time() < t + 0.5:
            peer.poll()
            got = peer.outputs_for(77, 7, ["labels", "depth"])
            time.sleep(0.01)
    check(got is not None, "the good image after the flood was not processed")
    d = peer.wait_diag(lambda d: int(d.get("frames_processed", 0)) >= 1, 20) or peer.last_diag or {}
    print("diagnostics after flood:", json.dumps({k: v for k, v in d.items() if k.startswith(("rejected", "frames",
                                                                                             "battery", "_"))}))
    total = int(d.get("frames_rejected", -1))
    check(total >= len(kinds), f"only {total} malformed images counted as rejected")
    check(total <= sum(sent.values()), f"{total} rejected > {sum(sent.values())} sent")
    check(int(d.get("battery_invalid", 0)) >= 4, "invalid battery readings not counted")
    json.dump(d, open(args.out, "w"), indent=1) if args.out else None


def cmd_latency(args):
    peer = Peer(args.domain)
    check(peer.wait_diag(lambda d: True, 30) is not None, "no diagnostics from the node")
    rgb = np.load(args.image) if args.image else (np.arange(240 * 320 * 3) % 253).astype(np.uint8).reshape(240, 320, 3)
    h, w, _ = rgb.shape
    topics = list(OUTPUT_IMAGES) + ["camera_info", "frame_timing"]
    overheads, totals, inferences, transport_in, node_ms, transport_out = [], [], [], [], [], []
    queue, publish = [], []
    for i in range(args.frames + args.warmup):
        sec, nanosec = 5000 + i, 1
        msg = image_msg(rgb, "rgb8", sec, nanosec, "camera_optical_frame")
        if i == 0:
            peer.info_writer.write(camera_info_msg(w, h, sec, nanosec, "camera_optical_frame"))
        got = None
        for _attempt in range(20):
            t_pub, t_pub_unix = time.perf_counter(), time.time() * 1e3
            peer.image_writer.write(msg)
            end = time.perf_counter() + 1.0
            while got is None and time.perf_counter() < end:
                peer.wait(end - time.perf_counter())  # wakes as soon as a sample arrives
                got = peer.outputs_for(sec, nanosec, topics)
            if got is not None:
                break
            peer.info_writer.write(camera_info_msg(w, h, sec, nanosec, "camera_optical_frame"))
        if not check(got is not None, f"frame {i}: outputs not received"):
            continue
        t_all = max(arr for _, arr in got.values())
        timing = {kv.key: float(kv.value) for kv in got["frame_timing"][0].status[0].values}
        total_ms = (t_all - t_pub) * 1e3
        if i >= args.warmup:
            t_all_unix = t_pub_unix + total_ms
            transport_in.append(timing["received_unix_ms"] - t_pub_unix)
            node_ms.append(timing["total_ms"] - timing["inference_ms"])
            queue.append(timing["queue_ms"])
            publish.append(timing["publish_ms"])
            transport_out.append(t_all_unix - timing["published_unix_ms"])
            totals.append(total_ms)
            inferences.append(timing["inference_ms"])
            overheads.append(total_ms - timing["inference_ms"])
        time.sleep(0.05)
    q = lambda a, p: float(np.percentile(a, p)) if a else float("nan")  # noqa: E731
    res = {"frames": len(overheads), "size": f"{w}x{h}",
           "overhead_ms_p50": q(overheads, 50), "overhead_ms_p95": q(overheads, 95),
           "overhead_ms_max": max(overheads) if overheads else float("nan"),
           "total_ms_p50": q(totals, 50), "inference_ms_p50": q(inferences, 50),
           "breakdown_ms_p50": {"peer_publish_to_node_receive": q(transport_in, 50),
                                "node_excluding_inference": q(node_ms, 50),
                                "node_slot_to_inference_start": q(queue, 50),
                                "node_build_and_publish": q(publish, 50),
                                "node_publish_to_peer_has_all": q(transport_out, 50)}}
    print(json.dumps(res), flush=True)
    if args.out:
        json.dump(res, open(args.out, "w"), indent=1)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ["interop", "flood", "latency"]:
        p = sub.add_parser(name)
        p.add_argument("--domain", type=int, default=int(os.environ.get("ROS_DOMAIN_ID", "0")))
        p.add_argument("--timeout", type=float, default=60.0)
        p.add_argument("--out")
        if name == "interop":
            p.add_argument("--cases", required=True)
        if name == "flood":
            p.add_argument("--count", type=int, default=5000)
        if name == "latency":
            p.add_argument("--frames", type=int, default=100)
            p.add_argument("--warmup", type=int, default=5)
            p.add_argument("--image")
    args = ap.parse_args()
    {"interop": cmd_interop, "flood": cmd_flood, "latency": cmd_latency}[args.cmd](args)
    if failures:
        print(f"{len(failures)} checks failed", flush=True)
        sys.exit(1)
    print("peer: all checks passed", flush=True)


if __name__ == "__main__":
    main()
