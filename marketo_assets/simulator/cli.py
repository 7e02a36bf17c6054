"""`marketo-simulator` command line: build the data set, serve until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time

READY = "MARKETO_SIMULATOR_READY"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="marketo-simulator", description="A local Marketo (bulk export) simulator."
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    p.add_argument("--leads", type=int, default=100000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--created-from", default="2025-01-01")
    p.add_argument("--created-to", default="2025-07-01")
    p.add_argument(
        "--status-interval", type=float, default=60.0, help="seconds between job status updates"
    )
    p.add_argument("--client-id", default="demo-client")
    p.add_argument("--client-secret", default="demo-secret")
    p.add_argument(
        "--client",
        action="append",
        default=[],
        metavar="ID:SECRET",
        help="extra API client (repeatable)",
    )
    p.add_argument("--faults", default=None, help="fault profiles, comma-separated")
    p.add_argument("--quota-mb", type=float, default=500)
    p.add_argument(
        "--rows-per-second",
        type=float,
        default=50000,
        help="processing speed of export jobs (0 = as fast as possible)",
    )
    p.add_argument("--token-ttl", type=int, default=3600)
    p.add_argument("--daily-call-limit", type=int, default=50000)
    p.add_argument(
        "--disable-filter",
        action="append",
        default=[],
        choices=["updatedAt", "smartList", "isExhausted", "nurtureCadence", "statusNames"],
        help="answer 1035 for this filter (updatedAt: leads and program members)",
    )
    p.add_argument("--activities-per-lead", type=float, default=8.0, help="mean, New Lead included")
    p.add_argument("--deleted-lead-rate", type=float, default=0.01, help="share of leads deleted")
    p.add_argument("--merge-rate", type=float, default=0.005, help="share of leads merged away")
    p.add_argument("--programs", type=int, default=10, help="number of programs")
    p.add_argument(
        "--allow-query-token",
        action="store_true",
        help="also accept the deprecated access_token query parameter",
    )
    p.add_argument(
        "--ssv-separator",
        choices=["semicolon", "space"],
        default="semicolon",
        help="separator of SSV files (Marketo's pages name both)",
    )
    p.add_argument("--now", default=None, help="start the simulated clock at this ISO time")
    p.add_argument("--log-level", default="warning")
    args = p.parse_args(argv)
    from .faults import PROFILES, parse_spec

    bad = [x for x in parse_spec(args.faults)[0] if x not in PROFILES]
    if bad:
        p.error(f"unknown fault profile(s) {', '.join(bad)}; known: {', '.join(PROFILES)}")
    if args.created_to <= args.created_from:
        p.error("--created-to must be after --created-from")
    if args.leads < 1:
        p.error("--leads must be at least 1")
    for item in args.client:
        if ":" not in item:
            p.error("--client takes ID:SECRET")
    return args


def main(argv: list[str] | None = None) -> None:
    t0 = time.perf_counter()
    args = parse_args(argv)
    import uvicorn

    from .data import DataSet, parse_day
    from .files import SSV_SEPARATORS
    from .server import Config, Simulator

    clients = {args.client_id: args.client_secret}
    for item in args.client:
        cid, _, secret = item.partition(":")
        clients[cid] = secret
    as_of = parse_day(args.now) if args.now else time.time()  # the clock at start
    ds = DataSet(args.leads, args.seed, args.created_from, args.created_to, as_of=as_of)
    cfg = Config(
        status_interval=args.status_interval,
        rows_per_second=args.rows_per_second,
        quota_mb=args.quota_mb,
        disabled_filters=list(args.disable_filter),
        token_ttl=args.token_ttl,
        daily_call_limit=args.daily_call_limit,
        allow_query_token=args.allow_query_token,
        ssv_separator=SSV_SEPARATORS[args.ssv_separator],
        activities_per_lead=args.activities_per_lead,
        deleted_lead_rate=args.deleted_lead_rate,
        merge_rate=args.merge_rate,
        programs=args.programs,
    )
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(256)
    port = sock.getsockname()[1]
    base_url = f"http://{args.host}:{port}"

    def ready() -> None:
        info = {
            "base_url": base_url,
            "client_id": args.client_id,
            "client_secret": args.client_secret,
        }
        print(f"{READY} {json.dumps(info)}", flush=True)
        print(
            f"Marketo simulator: {args.leads} leads, serving {base_url} "
            f"(ready in {time.perf_counter() - t0:.1f}s; Ctrl-C to stop)",
            flush=True,
        )

    sim = Simulator(ds, cfg, clients, faults=args.faults, now=args.now, on_ready=ready)
    config = uvicorn.Config(
        sim.app,
        log_level=args.log_level,
        lifespan="on",
        timeout_graceful_shutdown=2,
        access_log=False,
        date_header=False,  # the app sends Date on the simulated clock
    )
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        sim.close()
    sys.exit(0)


if __name__ == "__main__":
    main()
