#!/usr/bin/env python3
"""Writes seeds for the message fuzz target: one byte choosing the type (0 Image, 1 CameraInfo,
2 BatteryState), then a serialized payload as it travels on the wire (4-byte encapsulation
header + CDR), made by an independent implementation (Cyclone DDS's Python binding,
`pip install cyclonedds==11.0.1`) from the peer's ROS message definitions.

    python3 fuzz/seeds/make_message_seeds.py fuzz/seeds/message
"""
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../ros/tests/peer"))
from rosmsgs import BatteryState, CameraInfo, Header, Image, Time  # noqa: E402


def main(out):
    hdr = Header(stamp=Time(1_700_000_000, 5), frame_id="camera_optical_frame")
    seeds = {
        "image_rgb8_4x3": (0, Image(header=hdr, height=3, width=4, encoding="rgb8", step=12, data=bytes(range(36)))),
        "image_bgra8_padded": (0, Image(header=hdr, height=2, width=2, encoding="bgra8", step=10, data=bytes(20))),
        "image_mono8": (0, Image(header=hdr, height=2, width=3, encoding="mono8", step=3, data=bytes(6))),
        "image_bad_step": (0, Image(header=hdr, height=2, width=3, encoding="rgb8", step=5, data=bytes(10))),
        "camera_info": (1, CameraInfo(header=hdr, height=240, width=320, distortion_model="plumb_bob", d=[0.0] * 5,
                                      k=[300, 0, 159.5, 0, 300, 119.5, 0, 0, 1], r=[1, 0, 0, 0, 1, 0, 0, 0, 1],
                                      p=[300, 0, 159.5, 0, 0, 300, 119.5, 0, 0, 0, 1, 0])),
        "battery": (2, BatteryState(header=hdr, voltage=12.1, percentage=0.8, present=True, cell_voltage=[4.0, 4.1],
                                    location="base", serial_number="x")),
        "battery_nan": (2, BatteryState(percentage=math.nan)),
    }
    for name, (kind, msg) in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(bytes([kind]) + msg.serialize())
    print(f"wrote {len(seeds)} seeds to {out}")


if __name__ == "__main__":
    main(sys.argv[1])
