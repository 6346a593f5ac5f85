"""Province-scale benchmark: do a county's reads stay as fast when the platform holds a whole province?

One command, from the repository root, against the PostgreSQL at PLAN_API_BENCH_POSTGRES_URL
(default postgresql+psycopg://postgres@127.0.0.1:5432/test; it creates and drops its own databases):

    .venv/bin/python bench/province_bench.py            # --reports 1000000 --counties 22 --plans 5

What it does:

1. builds two databases, migrated to head, each seeded with 西吉县's plan through the real importer:
   - "county": 西吉县 alone, with `--plans` copies of the plan and its share of the reports
     (`--reports / --counties`);
   - "province": every county-level division of 宁夏 (22) with its own units and `--plans` copies of
     the plan each (≈ 22 × 5 × 76 tasks), and `--reports` progress reports in all;
   the copies, units, links, reports and each owner's latest state are bulk SQL (INSERT … SELECT,
   generate_series), not the API: the point is the size, not the write path. Rows are inserted in
   the order an import writes them (a plan's tasks together; reports oldest first, counties
   interleaved, as they arrive), then VACUUM ANALYZE, as autovacuum would;
2. times, in process, through the real app (routing, services, rendering; the response cache is
   bypassed by a different `as_of`/`cursor` on every request), the same requests on both databases:
   a county-filtered task list, a unit's tasks across its county's plans, a plan's stats, a unit's
   report history, the county-filtered change feed and the jurisdiction tree;
3. prints the median of `--repeat` runs per request and the ratio province / county. The two
   databases take turns request by request, so other load on the machine falls on both alike. A
   ratio near 1 means a county's reads do not grow with the number of counties on the platform.

Never a timed assertion: a benchmark, run by hand, results in the printout.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import date, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.config import get_settings  # noqa: E402
from app.db import get_session, get_write_session, make_engine  # noqa: E402
from app.importer.service import seed_if_empty  # noqa: E402
from app.main import create_app  # noqa: E402
from app.migrate import upgrade_to_head  # noqa: E402
from app.services import jurisdictions  # noqa: E402

POSTGRES_URL = os.environ.get("PLAN_API_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
XIJI = "640422"
SEED = "xiji-fzsh-2021-2025"


@contextmanager
def database(tag: str) -> Iterator[Engine]:
    admin = make_engine(POSTGRES_URL).execution_options(isolation_level="AUTOCOMMIT")
    name = f"plan_api_bench_{tag}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def counties_of_ningxia() -> list[str]:
    table = jurisdictions._national()  # the package's table, as the service reads it
    return sorted(d.code for d in table.values() if d.code.startswith("64") and d.level == "county")


def load(engine: Engine, counties: list[str], plans: int, reports: int) -> dict[str, float]:
    """The seed through the importer, then everything else by bulk SQL. Returns timings of the steps."""
    took: dict[str, float] = {}
    started = time.perf_counter()
    upgrade_to_head(engine)
    with Session(engine) as session:
        seed_if_empty(session=session, settings=get_settings())
        for code in counties:
            jurisdictions.ensure(session=session, code=code)
        session.commit()
    took["migrate + seed"] = time.perf_counter() - started

    started = time.perf_counter()
    with engine.begin() as conn:
        x = conn.execute(text("SELECT id FROM jurisdiction WHERE code = :c"), {"c": XIJI}).scalar_one()
        seed_plan = conn.execute(text("SELECT id FROM plan WHERE slug = :s"), {"s": SEED}).scalar_one()
        # Every county gets 西吉县's units under its own jurisdiction (same names: every county has a 县司法局).
        conn.execute(
            text(
                """INSERT INTO unit (jurisdiction_id, name, kind, created_at)
                   SELECT j.id, u.name, u.kind, u.created_at FROM unit u CROSS JOIN jurisdiction j
                   WHERE u.jurisdiction_id = :x AND j.code = ANY(:codes) AND j.id <> :x"""
            ),
            {"x": x, "codes": counties},
        )
        conn.execute(
            text(
                """INSERT INTO group_member (group_id, member_id)
                   SELECT g2.id, m2.id FROM group_member gm
                   JOIN unit g ON g.id = gm.group_id JOIN unit m ON m.id = gm.member_id
                   JOIN unit g2 ON g2.name = g.name AND g2.jurisdiction_id <> :x
                   JOIN unit m2 ON m2.name = m.name AND m2.jurisdiction_id = g2.jurisdiction_id
                   WHERE g.jurisdiction_id = :x"""
            ),
            {"x": x},
        )
        # Plans: county × n, copies of the seed plan (the seed itself is 西吉县's plan 0).
        conn.execute(
            text(
                """INSERT INTO plan (slug, jurisdiction_id, title, issuer, doc_index, issued_on, period_start,
                                     period_end, goals, source_name, source_checksum, source_encoding,
                                     imported_at, created_at)
                   SELECT j.code || '-plan-' || n, j.id, p.title, p.issuer, p.doc_index, p.issued_on,
                          p.period_start, p.period_end, p.goals, p.source_name, p.source_checksum,
                          p.source_encoding, p.imported_at, p.created_at
                   FROM plan p CROSS JOIN jurisdiction j CROSS JOIN generate_series(0, :n - 1) n
                   WHERE p.id = :seed AND j.code = ANY(:codes) AND NOT (j.id = :x AND n = 0)"""
            ),
            {"seed": seed_plan, "codes": counties, "x": x, "n": plans},
        )
        conn.execute(
            text(
                """INSERT INTO section (plan_id, code, level, number, title, body, position, source_line,
                                        marker_inferred)
                   SELECT p.id, s.code, s.level, s.number, s.title, s.body, s.position, s.source_line,
                          s.marker_inferred
                   FROM section s CROSS JOIN plan p WHERE s.plan_id = :seed AND p.id <> :seed
                   ORDER BY p.id, s.position"""
            ),
            {"seed": seed_plan},
        )
        conn.execute(
            text(
                """UPDATE section c SET parent_id = p.id FROM section p
                   WHERE c.plan_id = p.plan_id AND c.level = 2 AND p.level = 1
                     AND p.code = split_part(c.code, '.', 1) AND c.parent_id IS NULL"""
            )
        )
        conn.execute(
            text(
                """INSERT INTO task (plan_id, section_id, code, position, title, text, due, source_line,
                                     number_inferred, status, progress, created_at, updated_at)
                   SELECT p.id, s2.id, t.code, t.position, t.title, t.text, t.due, t.source_line,
                          t.number_inferred, t.status, t.progress, t.created_at, t.updated_at
                   FROM task t JOIN section s ON s.id = t.section_id CROSS JOIN plan p
                   JOIN section s2 ON s2.plan_id = p.id AND s2.code = s.code
                   WHERE t.plan_id = :seed AND p.id <> :seed
                   ORDER BY p.id, t.position"""
            ),
            {"seed": seed_plan},
        )
        conn.execute(
            text(
                """INSERT INTO responsibility (task_id, unit_id, role, as_written, position, source_line)
                   SELECT t2.id, u2.id, r.role, r.as_written, r.position, r.source_line
                   FROM responsibility r JOIN task t ON t.id = r.task_id JOIN unit u ON u.id = r.unit_id
                   JOIN task t2 ON t2.code = t.code AND t2.plan_id <> :seed
                   JOIN plan p2 ON p2.id = t2.plan_id
                   JOIN unit u2 ON u2.name = u.name AND u2.jurisdiction_id = p2.jurisdiction_id
                   WHERE t.plan_id = :seed
                   ORDER BY t2.id, r.position"""
            ),
            {"seed": seed_plan},
        )
        conn.execute(
            text(
                """INSERT INTO reporting_schedule (plan_id, cadence, deadline_days, cooperating_units_report,
                                                   review_required, updated_at)
                   SELECT p.id, rs.cadence, rs.deadline_days, rs.cooperating_units_report, rs.review_required,
                          rs.updated_at
                   FROM reporting_schedule rs CROSS JOIN plan p WHERE rs.plan_id = :seed AND p.id <> :seed"""
            ),
            {"seed": seed_plan},
        )
    took["plans, units, links"] = time.perf_counter() - started

    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(
            text(
                """INSERT INTO api_key (prefix, secret_hash, name, is_admin, jurisdiction_id, created_at)
                   VALUES ('bench000', repeat('0', 64), 'bench', true, NULL, now())"""
            )
        )
        owner_links = conn.execute(
            text("SELECT count(*) FROM responsibility WHERE role IN ('lead', 'responsible')")
        ).scalar_one()
        per_link = max(1, reports // max(1, owner_links))
        conn.execute(
            text(
                """INSERT INTO progress_report (task_id, unit_id, via_unit_id, api_key_id, kind, status, percent,
                                                summary, period, evidence, created_at, review_state)
                   SELECT r.task_id, r.unit_id, r.unit_id, k.id, 'status', 'in_progress', (g * 7) % 100,
                          '第 ' || g || ' 次报送:已按计划推进。', (2021 + g % 5)::text || '-Q' || (1 + g % 4),
                          '[]', now() - make_interval(days => g), 'not_required'
                   FROM responsibility r CROSS JOIN generate_series(1, :per) g
                   CROSS JOIN (SELECT id FROM api_key WHERE prefix = 'bench000') k
                   WHERE r.role IN ('lead', 'responsible')
                   ORDER BY g DESC, r.task_id"""
            ),
            {"per": per_link},
        )
        conn.execute(
            text(
                """INSERT INTO task_unit_state (task_id, unit_id, via_unit_id, status, percent, period, report_id,
                                                updated_at)
                   SELECT DISTINCT ON (task_id, unit_id) task_id, unit_id, via_unit_id, status, percent, period,
                          id, created_at
                   FROM progress_report ORDER BY task_id, unit_id, id DESC"""
            )
        )
        conn.execute(
            text(
                "UPDATE task SET status = 'in_progress', progress = 50 WHERE id IN (SELECT task_id FROM task_unit_state)"
            )
        )
    took["reports"] = time.perf_counter() - started
    # What autovacuum does on a live platform: the bulk UPDATE above left a dead version of every task.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    return took


def sizes(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t: conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one()
            for t in ("jurisdiction", "plan", "task", "unit", "responsibility", "progress_report")
        }


@contextmanager
def app_on(engine: Engine) -> Iterator[TestClient]:
    app = create_app()

    def session() -> Iterator[Session]:
        with Session(engine, expire_on_commit=False) as s:
            yield s

    app.dependency_overrides[get_session] = session
    app.dependency_overrides[get_write_session] = session
    with TestClient(app) as client:
        yield client


def requests(unit_id: int) -> dict[str, str]:
    """Label → path template; {day} and {cursor} change on every run (so the response cache misses)."""
    plan = f"{XIJI}-plan-1"
    return {
        "county-filtered task list (?jurisdiction=, 100, count)": (
            f"/api/v1/plans/{plan}/tasks?jurisdiction={XIJI}&limit=100&count=true&as_of={{day}}"
        ),
        "a unit's tasks across its county's plans": f"/api/v1/units/{unit_id}/tasks?limit=100&as_of={{day}}",
        "plan stats": f"/api/v1/plans/{plan}/stats?as_of={{day}}",
        "a unit's report history (50)": f"/api/v1/units/{unit_id}/progress?limit=50&cursor={{cursor}}",
        "county change feed (100)": f"/api/v1/changes?jurisdiction={XIJI}&limit=100&since={{small}}",
    }


def _unit_and_top(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        unit_id = conn.execute(
            text(
                "SELECT u.id FROM unit u JOIN jurisdiction j ON j.id = u.jurisdiction_id "
                "WHERE j.code = :c AND u.name = '县司法局'"
            ),
            {"c": XIJI},
        ).scalar_one()
        top_report = conn.execute(text("SELECT max(id) FROM progress_report")).scalar_one() or 1
    return unit_id, top_report


def time_requests(engines: dict[str, Engine], repeat: int) -> dict[str, dict[str, float]]:
    """Median time per request and database. The databases take turns request by request, so load
    from elsewhere on the machine falls on both alike."""
    samples: dict[str, dict[str, list[float]]] = {tag: {} for tag in engines}
    with ExitStack() as stack:
        clients = {tag: stack.enter_context(app_on(engine)) for tag, engine in engines.items()}
        facts = {tag: _unit_and_top(engine) for tag, engine in engines.items()}
        labels = list(requests(0))
        for label in labels:
            for i in range(repeat + 2):
                for tag, client in clients.items():
                    unit_id, top_report = facts[tag]
                    path = requests(unit_id)[label].format(
                        day=(date(2024, 1, 1) + timedelta(days=i)).isoformat(), cursor=top_report - i, small=i % 3
                    )
                    started = time.perf_counter()
                    response = client.get(path)
                    elapsed = time.perf_counter() - started
                    assert response.status_code == 200, (path, response.text[:300])
                    if i >= 2:  # two warm-up runs
                        samples[tag].setdefault(label, []).append(elapsed)
        tree = "jurisdiction tree with counts (service)"
        for _ in range(repeat):
            for tag, engine in engines.items():
                with Session(engine) as session:
                    started = time.perf_counter()
                    jurisdictions.tree(session=session)
                    samples[tag].setdefault(tree, []).append(time.perf_counter() - started)
    return {tag: {label: statistics.median(values) for label, values in by.items()} for tag, by in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument("--counties", type=int, default=22, help="at most 22 (宁夏's county-level divisions)")
    parser.add_argument("--plans", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    counties = counties_of_ningxia()
    if XIJI not in counties:
        raise SystemExit("the national table lacks 西吉县")
    province = [XIJI, *[c for c in counties if c != XIJI][: args.counties - 1]]

    with ExitStack() as stack:
        engines: dict[str, Engine] = {}
        for tag, members, n_reports in (
            ("county", [XIJI], args.reports // len(province)),
            ("province", province, args.reports),
        ):
            engine = engines[tag] = stack.enter_context(database(tag))
            took = load(engine, members, args.plans, n_reports)
            print(f"\n{tag}: " + ", ".join(f"{k} {v:.1f}s" for k, v in took.items()))
            print(f"{tag}: " + ", ".join(f"{k}={v}" for k, v in sizes(engine).items()))
        results = time_requests(engines, args.repeat)

    print(f"\nmedian of {args.repeat} requests each, ms (ratio = province / county)\n")
    print(f"| request | county | province ({len(province)} counties) | ratio |")
    print("|---|---:|---:|---:|")
    for label, county_s in results["county"].items():
        province_s = results["province"][label]
        print(f"| {label} | {county_s * 1000:.1f} | {province_s * 1000:.1f} | {province_s / county_s:.2f} |")


if __name__ == "__main__":
    main()
