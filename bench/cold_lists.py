"""The cold-list workload of both read benches (`read_bench.py` over HTTP, `asgi_bench.py` in process):
every request a task list nobody asked before, and Datasette running the same rows' SQL with the same
parameters.

Requests cycle the (unit, role, chapter) combinations that hold tasks — an empty answer costs either
side next to nothing — and each lap raises `limit` by one, so no URL repeats."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import urlencode

PLAN = "xiji-fzsh-2021-2025"
ROLES = ("lead", "cooperating", "responsible")
# A task's unit names in one role, in source order (Datasette's side of `responsibilities`).
UNITS_IN_ROLE = """(select group_concat(name, '、') from (select u.name from responsibility r
    join unit u on u.id = r.unit_id where r.task_id = t.id and r.role = '{role}' order by r.position))"""
UNIT_COLUMNS = ", ".join(UNITS_IN_ROLE.format(role=role) + " as " + role for role in ROLES)
# The cold list's rows: the plan's tasks in one chapter where the unit has the role, in plan order.
COLD_SQL = f"""select t.code, t.title, t.text, t.due, t.status, {UNIT_COLUMNS}
from task t join plan p on p.id = t.plan_id
where p.slug = '{PLAN}' and t.code like :section || '.%'
  and t.id in (select r.task_id from responsibility r join unit u on u.id = r.unit_id
               where u.name = :unit and r.role = :role)
order by t.position limit :limit"""


class ColdLists:
    def __init__(self, db: Path) -> None:
        with sqlite3.connect(db) as conn:
            self.combos: list[tuple[str, str, str]] = conn.execute(
                "select distinct u.name, r.role, substr(t.code, 1, instr(t.code, '.') - 1)"
                " from responsibility r join unit u on u.id = r.unit_id join task t on t.id = r.task_id"
                f" where r.role in ({', '.join(repr(role) for role in ROLES)}) order by 1, 2, 3"
            ).fetchall()
        self.n = 0  # the next request's number, for callers that just take the next one

    def take(self) -> int:
        self.n += 1
        return self.n - 1

    def params(self, n: int) -> dict[str, str]:
        unit, role, chapter = self.combos[n % len(self.combos)]
        return {"unit": unit, "role": role, "section": chapter, "limit": str(100 + n // len(self.combos))}

    def api_query(self, n: int) -> str:
        return urlencode(self.params(n))

    def datasette_query(self, n: int) -> str:
        return urlencode({"sql": COLD_SQL, "_shape": "array", **self.params(n)})
