"""Full run of the burst-detection injection harness (figures reported in docs/bursts.md).

    /work/venv/bin/python benchmarks/injection_harness.py              # 100 seeds + 50 organic-only accounts
    /work/venv/bin/python benchmarks/injection_harness.py --interleave 0.2 --seeds 50
    /work/venv/bin/python benchmarks/injection_harness.py --waves 2 --seeds 30 --null-accounts 30   # viral days
    /work/venv/bin/python benchmarks/injection_harness.py --follow-times --instant 1 --waves 2   # fresh bricks, exact times
    /work/venv/bin/python benchmarks/injection_harness.py --instant 1 --waves 2   # the same bricks, creation dates only

The harness itself (generator, injection, scoring) is ``followaudit.bursts.harness``.
"""

from __future__ import annotations

import argparse
import json

from followaudit.bursts.harness import run_harness


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--null-accounts", type=int, default=50)
    parser.add_argument("--min-organic", type=int, default=20_000)
    parser.add_argument("--max-organic", type=int, default=100_000)
    parser.add_argument("--interleave", type=float, default=0.0)
    parser.add_argument("--window-days", type=float, nargs=2, default=(1, 60), metavar=("MIN", "MAX"), help="brick creation window")
    parser.add_argument("--waves", type=int, default=0, help="clustered organic sign-up waves (viral days) per account")
    parser.add_argument("--follow-times", action="store_true", help="give the detector exact follow times (bricks delivered in 5 min-3 h)")
    parser.add_argument("--instant", type=float, default=0.0, help="share of bricks made of accounts created within hours of following (seen with exact times only with --follow-times)")
    parser.add_argument("--wave-hours", type=float, default=8.0, help="mean delay of a viral day's follows after its event (hours)")
    parser.add_argument("--json", action="store_true", help="print the full result as JSON too")
    args = parser.parse_args()
    res = run_harness(
        args.seeds, organic=(args.min_organic, args.max_organic), interleave=args.interleave,
        null_accounts=args.null_accounts, window_days=tuple(args.window_days), waves=args.waves,
        follow_times=args.follow_times, instant=args.instant, wave_hours=args.wave_hours,
    )
    print(res.summary())
    targets = res.recall >= 0.95 and res.organic_false_flag <= 0.01
    print(f"targets (recall >= 0.95, organic false flag <= 1%): {'met' if targets else 'NOT met'}")
    if args.json:
        print(json.dumps(res.to_dict(), indent=2, default=str))


if __name__ == "__main__":
    main()
