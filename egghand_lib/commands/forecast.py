"""``egghand forecast --video FILE.mp4 --poses FILE.json --camera FILE.json --model RUN --out OUT.mp4``.

Runs the streaming forecaster over a take (EgoExo4D-layout hand and camera-pose files) and writes a 10 fps
video: observed hands blue, the forecast 1 s ahead red (with the wrists' paths), the ground truth 1 s later
green (``--ground-truth``, a hand file; often the same file as ``--poses`` when those are annotations).
"""

from __future__ import annotations

import argparse

from egghand_lib.batch import NUM_OBS
from egghand_lib.forecast_video import forecast_take_video


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--video", required=True, help="the take's ego RGB video (30 fps)")
    parser.add_argument("--poses", required=True, help="hand-pose file in the EgoExo4D layout (the observed hands)")
    parser.add_argument("--camera", required=True, help="camera-pose file in the EgoExo4D layout")
    parser.add_argument("--model", required=True, help="training run folder or saved model folder")
    parser.add_argument("--out", required=True, help="video to write (.mp4)")
    parser.add_argument("--ground-truth", help="hand-pose file of the true hands, drawn 1 s after each forecast")
    parser.add_argument("--task", default="", help="the prompt (default: empty)")
    parser.add_argument("--size", type=int, default=224, help="frame size the model sees (as egghand prepare --size)")
    parser.add_argument("--scale", type=int, default=2, help="upsampling of the written frames (default 2)")
    parser.add_argument("--start", type=int, help="first 30 fps frame number (default: first with hands and camera)")
    parser.add_argument("--max-frames", type=int, help="at most this many 10 fps frames")
    parser.add_argument("--warmup", type=int, default=NUM_OBS,
                        help="frames before the first forecast (1-20; default 20 = 2 s)")
    parser.add_argument("--camera-name", help="camera entry of the camera file (default: the first aria*)")
    parser.add_argument("--device")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    res = forecast_take_video(args.video, args.poses, args.camera, args.model, args.out,
                              ground_truth=args.ground_truth, task=args.task, size=args.size, scale=args.scale,
                              start=args.start, max_frames=args.max_frames, min_frames=args.warmup,
                              camera_name=args.camera_name, device=args.device, progress=not args.no_progress)
    print(f"[forecast] {res['frames']} frames, {res['forecasts']} with a forecast: {res['out']}")
    return 0
