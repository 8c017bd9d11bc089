"""`moderation up`: run the whole service on one machine, keep it running, stop it on Ctrl-C.

Children are kept running by service/cli/supervisor.py: one that exits is started again with
backoff, and each writes to `var/log/<name>.log`, so the console holds the banner and one line
per start, exit, restart and stop.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from rich.console import Console

from service.cli.supervisor import Supervisor
from service.core.broker import SCORING_QUEUE, TRAINING_QUEUE, WEBHOOK_QUEUE
from service.core.db import make_engine, make_session_factory, session_scope
from service.core.embedded_redis import EmbeddedRedis
from service.core.migrate import upgrade_database
from service.core.settings import Settings
from service.core.tables import Role
from service.sites.keys import authenticate, create_key

__all__ = ["api_command", "demo_keys", "proxy_options", "run_all", "worker_command"]

console = Console()
DEMO_SITE = "demo"


def worker_command(
    *, queue: str = SCORING_QUEUE, loglevel: str = "INFO", node: str | None = None
) -> list[str]:
    # Solo pool and no gossip/mingle/heartbeat: measured fastest here for millisecond tasks;
    # run more worker processes to use more cores. Webhook deliveries wait on the network,
    # not the CPU: threads, so one slow receiver holds one thread, and a node name of their
    # own beside a scoring worker on the same host. Training runs one job at a time for
    # minutes: solo, under its own node name, so scoring never waits behind it.
    if queue == WEBHOOK_QUEUE:
        pool = ["-P", "threads", "-c", "8", "-n", f"{queue}@%h"]
    elif queue == TRAINING_QUEUE:
        pool = ["-P", "solo", "-n", f"{queue}@%h"]
    else:
        # Several scoring workers on one host each need a node name of their own.
        pool = ["-P", "solo", *(["-n", f"{node}@%h"] if node else [])]
    return [
        sys.executable, "-m", "celery", "-A", "workers.app", "worker",
        "-Q", queue, *pool, "-l", loglevel,
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip


def beat_command(settings: Settings) -> list[str]:
    schedule = (settings.var_dir / "celerybeat-schedule").resolve()
    return [sys.executable, "-m", "celery", "-A", "workers.app", "beat", "-s", str(schedule)]


def proxy_options(settings: Settings) -> list[str]:
    """uvicorn's flags for believing X-Forwarded-For/-Proto from the trusted proxies only."""
    if not settings.trusted_proxies:
        # uvicorn's own default believes 127.0.0.1 (and $FORWARDED_ALLOW_IPS): trust nobody.
        return ["--no-proxy-headers"]
    # uvicorn parses networks strictly and quietly treats "10.0.0.1/8" as a name that never
    # matches; the settings accept it, so hand uvicorn the network it means.
    networks = [ipaddress.ip_network(p, strict=False) for p in settings.trusted_proxies]
    allowed = [
        str(n.network_address) if n.prefixlen == n.max_prefixlen else str(n) for n in networks
    ]
    return ["--proxy-headers", "--forwarded-allow-ips", ",".join(allowed)]


def api_command(settings: Settings) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", "--factory", "service.app:create_app",
        "--host", settings.api_host, "--port", str(settings.api_port),
        "--no-access-log", *proxy_options(settings),
        *(["--workers", str(settings.api_workers)] if settings.api_workers > 1 else []),
    ]  # fmt: skip


def demo_keys(settings: Settings) -> dict[str, str]:
    """Keys for the demo site, made on the first run and kept in var/ for the next ones."""
    path = settings.var_dir / "demo_keys.json"
    sessions = make_session_factory(make_engine(settings.resolved_database_url))
    with session_scope(sessions) as session:
        if path.exists():
            keys: dict[str, str] = json.loads(path.read_text())
            try:
                for plain in keys.values():
                    authenticate(session, plain)
                return keys
            except Exception:
                pass  # the database was reset or a key revoked: make new ones
        keys = {
            role: create_key(session, site_name=DEMO_SITE, role=role, name="demo")[1]
            for role in (Role.SUBMITTER, Role.MODERATOR)
        }
    path.write_text(json.dumps(keys, indent=2))
    path.chmod(0o600)
    return keys


def _child_env(settings: Settings) -> tuple[dict[str, str], EmbeddedRedis | None]:
    """The children's environment, and the embedded Redis started for them when none is set."""
    env = dict(os.environ)
    embedded: EmbeddedRedis | None = None
    if not settings.redis_url:
        embedded = EmbeddedRedis(Path(settings.var_dir)).start()
        env["MODERATION_REDIS_URL"] = embedded.url
        console.print(f"[dim]embedded Redis at {embedded.url}[/dim]")
    env["MODERATION_VAR_DIR"] = str(settings.var_dir.resolve())
    # Every process of this machine writes its metrics here and the API serves their sum;
    # emptied first, since files of processes that are gone would count twice.
    metrics = settings.var_dir.resolve() / "metrics"
    shutil.rmtree(metrics, ignore_errors=True)
    metrics.mkdir(mode=0o700)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
    if not settings.database_url:
        env["MODERATION_DATABASE_URL"] = settings.resolved_database_url
    return env, embedded


def _children(supervisor: Supervisor, settings: Settings) -> None:
    """The processes of one machine, in the order they start (and the reverse of stopping)."""
    # Each with a warm standby that takes over the moment it exits: a crash never stops every
    # decision, and costs no CPU while nothing fails (service/cli/supervisor.py).
    for number in range(1, settings.scoring_workers + 1):
        name = f"worker-{number}" if settings.scoring_workers > 1 else "worker"
        command = worker_command(node=f"scoring{number}")
        supervisor.add(name, command, standby=settings.scoring_standby)
    supervisor.add("webhooks", worker_command(queue=WEBHOOK_QUEUE))
    supervisor.add("training", worker_command(queue=TRAINING_QUEUE))
    supervisor.add("beat", beat_command(settings))
    supervisor.add("api", api_command(settings))


def _say(message: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}", highlight=False)


def _print_welcome(settings: Settings, keys: dict[str, str]) -> None:
    base = f"http://{settings.api_host}:{settings.api_port}"
    console.print(
        f"\n[bold]Moderation service[/bold] is starting\n"
        f"  API:   {base}\n  Docs:  {base}/docs\n"
        f"  Moderators: {base}/moderate (sign in with the moderator key)\n"
        f"  Site [bold]{DEMO_SITE}[/bold] submitter key: {keys[Role.SUBMITTER]}\n"
        f"  Site [bold]{DEMO_SITE}[/bold] moderator key: {keys[Role.MODERATOR]}\n"
        f"  Try:   curl -s -X POST '{base}/v1/comments?wait_ms=2000' "
        f"-H 'Authorization: Bearer {keys[Role.SUBMITTER]}' "
        "-H 'Content-Type: application/json' "
        '-d \'{"external_id":"c1","article_id":"a1","author_id":"u1","text":"Thanks!"}\'\n'
        "Press Ctrl-C to stop.\n",
        soft_wrap=True,
    )


def run_all(settings: Settings) -> int:
    """Start Redis (embedded unless configured), migrate, then workers, beat and API; keep
    them running until Ctrl-C or SIGTERM, then stop them in order."""
    settings.var_dir.mkdir(parents=True, exist_ok=True, mode=0o700)  # keys, secrets, data
    env, embedded = _child_env(settings)
    supervisor = Supervisor(settings.var_dir, env, say=_say)
    stopping = False

    def _stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    try:
        upgrade_database(settings.resolved_database_url)
        keys = demo_keys(settings)
        _children(supervisor, settings)
        supervisor.start_all()
        _print_welcome(settings, keys)
        while not stopping:
            supervisor.watch()
            time.sleep(0.5)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
        _say("stopping...")
        supervisor.stop_all()
        if embedded is not None:
            embedded.stop()
