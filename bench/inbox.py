"""inbox: "my tasks and my groups' tasks, overdue first, 50 a page" through
`GET /api/v1/tasks?scope=all&status=open&limit=50`, with 1,000,000 tasks (200,000 open) and 5,000
people, against the same SQL the endpoint runs (the page and its count) executed directly.

The data is generated set-based (INSERT … SELECT over generate_series, a fixed seed, then VACUUM
(ANALYZE) as autovacuum would have): groups beside the seeded ones, people in one to four of them
with a skew (a few large departments, many small teams), and tasks offered to a group, to a named person, or both, some claimed, some without a due
time, a quarter of the open ones overdue. The measured people are a spread of generated ones with
several groups and tasks of their own, plus demo people; requests are sequential, so the latency is
the path's own. The ceiling is the endpoint's two statements (count and page, compiled from
`inbox_query` for the same people) over one psycopg connection.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql

from bench.common import Row, Sizes, Stopwatch, local_stack, p50, p95, say
from erp.passwords import hash_password
from erp.queries import inbox_query
from lotline_run.stack import DEMO_PASSWORD, LocalStack

PAGE = 50
EXTRA_GROUPS = 85  # teams beside the seeded departments: 100 groups in all
MEASURED = 40  # people the requests are spread over
DEMO_MEASURED = ["bob", "carol", "heidi", "frank"]
# groups offered tasks and joined by people, most used first (a pow(random(), 2) pick favours them)
RANKED = """
    SELECT id, name, row_number() OVER (
        ORDER BY array_position(ARRAY['production','qc','qa','warehouse','engineering','buyer',
                 'mrb','ccb','ra','qa-manager','finance','purchasing-manager',
                 'quality-director'], name) NULLS LAST, name) AS rank
    FROM app_group WHERE name NOT IN ('admin', 'systems')
"""

LOAD = [
    "SELECT setseed(0.42)",
    """INSERT INTO app_group (name, description)
       SELECT 'team-' || lpad(n::text, 3, '0'), 'Cell team ' || n
       FROM generate_series(1, %(groups)s) AS n""",
    """INSERT INTO app_user (username, full_name, email, password_hash, is_active, is_system,
           locale, failed_login_count, failed_signature_count)
       SELECT 'user' || lpad(n::text, 5, '0'), 'Generated Person ' || n,
           'user' || n || '@example.com', %(hash)s, true, false, 'en', 0, 0
       FROM generate_series(1, %(users)s) AS n""",
    # one to four picks each, skewed to the large departments; a repeated pick is one membership
    f"""WITH ranked AS ({RANKED}),
       picks AS (
           SELECT u.id AS user_id,
                  1 + floor(pow(random(), 2) * (SELECT count(*) FROM ranked))::int AS rank
           FROM app_user u CROSS JOIN generate_series(1, 4) AS k
           WHERE u.username LIKE 'user%%' AND k <= 1 + (u.id * 7919) %% 4)
       INSERT INTO group_membership (user_id, group_id)
       SELECT DISTINCT p.user_id, r.id FROM picks p JOIN ranked r USING (rank)""",
    f"""CREATE TEMP TABLE ranked AS {RANKED}""",
    # a row's random draws: r1 status, r2 whom it is offered to, r3/r4 groups, r5 due, r6 claim
    """INSERT INTO task (workflow_id, run_id, process_id, process_kind, step, kind, title,
           description, business_key, initiator, excluded_users, candidate_groups,
           candidate_users, rule, k, stage, stage_count, spec, status, outcome, level, due_at,
           claimed_by, claimed_at, created_at, closed_at)
       SELECT 'bench-' || n || '.review', 'run-' || n, 'bench-' || n,
           (ARRAY['approval','change','nonconformance','capa','purchase'])[1 + n %% 5],
           'review', 'approve', 'Review and approve DOC-' || n || ' rev B',
           'Routine review of a controlled document.', 'DOC-' || n, 'alice', '{}',
           CASE WHEN d.r2 < 0.20 THEN '{}'::text[]
                WHEN d.r2 < 0.35 OR d.r4 > 0.2 THEN ARRAY[g1.name]
                ELSE ARRAY[g1.name, g2.name] END,
           CASE WHEN d.r2 < 0.35
                THEN ARRAY['user' || lpad((1 + floor(d.r6 * %(users)s))::text, 5, '0')]
                ELSE '{}'::text[] END,
           'any', 1, 1, 1,
           jsonb_build_object(
               'outcomes', jsonb_build_array(
                   jsonb_build_object('name', 'approve', 'label', 'Approve'),
                   jsonb_build_object('name', 'reject', 'label', 'Reject')),
               'fields', jsonb_build_array(
                   jsonb_build_object('name', 'comment', 'label', 'Comment', 'type', 'text')),
               'context', jsonb_build_object('document', 'DOC-' || n, 'revision', 'B')),
           s.status, CASE WHEN s.status = 'completed' THEN 'approve' END, 1,
           CASE WHEN s.status <> 'open' THEN now() - (1 + d.r5 * 700) * interval '1 day'
                WHEN d.r5 < 0.05 THEN NULL
                ELSE now() + (d.r5 * 16 - 4) * interval '1 day' END,
           CASE WHEN s.status = 'open' AND d.r6 < 0.05 AND d.r2 >= 0.20
                THEN 'user' || lpad((1 + floor(d.r4 * %(users)s))::text, 5, '0') END,
           CASE WHEN s.status = 'open' AND d.r6 < 0.05 AND d.r2 >= 0.20 THEN now() END,
           now() - (d.r5 * 30) * interval '1 day',
           CASE WHEN s.status <> 'open' THEN now() - (d.r5 * 700) * interval '1 day' END
       FROM generate_series(1, %(tasks)s) AS n
       CROSS JOIN LATERAL (SELECT random() AS r1, random() AS r2, random() AS r3,
                                  random() AS r4, random() AS r5, random() AS r6, n AS m) AS d
       CROSS JOIN LATERAL (SELECT CASE WHEN d.r1 < %(open_share)s THEN 'open'
                                       WHEN d.r1 < %(open_share)s + 0.05 THEN 'cancelled'
                                       ELSE 'completed' END AS status) AS s
       JOIN ranked g1 ON g1.rank = 1 + floor(pow(d.r3, 2) * (SELECT count(*) FROM ranked))::int
       JOIN ranked g2 ON g2.rank = 1 + floor(d.r4 * (SELECT count(*) FROM ranked))::int""",
    # what autovacuum leaves a table in that has lived a while: statistics, the visibility map,
    # and the GIN indexes' pending lists merged
    "VACUUM (ANALYZE)",
]

# generated people with several groups and tasks named to them, spread over group sizes
PEOPLE = """
    WITH groups AS (
        SELECT m.user_id, count(*) AS n FROM group_membership m GROUP BY m.user_id),
    named AS (
        SELECT unnest(candidate_users) AS username, count(*) AS n FROM task
        WHERE status = 'open' GROUP BY 1)
    SELECT u.username FROM app_user u
    JOIN groups g ON g.user_id = u.id JOIN named t ON t.username = u.username
    WHERE u.username LIKE 'user%%' AND g.n >= 2
    ORDER BY md5(u.username) LIMIT %(n)s
"""


def _statements(usernames: list[str], groups: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """The endpoint's two statements for one person, as psycopg runs them: count, then page."""
    query = inbox_query(
        usernames=usernames, groups=groups, scope="all", status="open", everything=True
    )
    count = select(func.count()).select_from(query.order_by(None).subquery())
    page = query.limit(PAGE).offset(0)
    dialect = postgresql.psycopg.dialect()  # type: ignore[attr-defined]
    out = []
    for statement in (count, page):
        compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        out.append((str(compiled), dict(compiled.params)))
    return out


def _literal(statement: Any) -> str:
    return str(
        statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    )


async def _load(stack: LocalStack, sizes: Sizes, dsn: str) -> float:
    params = {
        "groups": EXTRA_GROUPS,
        "users": sizes.inbox_users,
        "tasks": sizes.inbox_tasks,
        "open_share": sizes.inbox_open / sizes.inbox_tasks,
        "hash": hash_password(DEMO_PASSWORD),  # once: every generated person shares it
    }
    with Stopwatch() as clock:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            for sql in LOAD:
                await conn.execute(sql, params)
    return clock.seconds


async def run(sizes: Sizes) -> list[Row]:
    async with local_stack("inbox", workers=0) as stack:
        assert stack.postgres is not None
        dsn = f"host={stack.postgres.socket_dir} user=postgres dbname=lotline"
        say(
            f"inbox: loading {sizes.inbox_users} people, {sizes.inbox_tasks} tasks "
            f"({sizes.inbox_open} open)"
        )
        load_s = await _load(stack, sizes, dsn)
        say(f"inbox: loaded in {load_s:.0f} s")
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            people = [r[0] for r in await (await conn.execute(PEOPLE, {"n": MEASURED})).fetchall()]
            people += DEMO_MEASURED
            groups_of: dict[str, list[str]] = {}
            for name in people:
                rows = await conn.execute(
                    "SELECT g.name FROM app_group g JOIN group_membership m ON m.group_id = g.id "
                    "JOIN app_user u ON u.id = m.user_id WHERE u.username = %s ORDER BY g.name",
                    (name,),
                )
                groups_of[name] = [r[0] for r in await rows.fetchall()]
            shape = await (
                await conn.execute(
                    "SELECT (SELECT count(*) FROM task), (SELECT count(*) FROM task "
                    "WHERE status = 'open'), (SELECT count(*) FROM task WHERE status = 'open' "
                    "AND due_at < now()), (SELECT count(*) FROM app_user), "
                    "(SELECT count(*) FROM app_group), (SELECT count(*) FROM group_membership)"
                )
            ).fetchone()
            assert shape is not None

        say(f"inbox: logging in {len(people)} people")
        headers = {name: await stack.token(name) for name in people}
        order = [people[n % len(people)] for n in range(sizes.inbox_requests)]
        seen: dict[str, int] = {}
        for name in people:  # warm the API's pool and the buffer cache for both legs alike
            response = await stack.http.get(
                "/api/v1/tasks",
                params={"scope": "all", "status": "open", "limit": PAGE},
                headers=headers[name],
            )
            response.raise_for_status()
            seen[name] = response.json()["count"]

        say(f"inbox: {len(order)} requests over {len(people)} people")
        api_ms: list[float] = []
        for name in order:
            began = time.perf_counter()
            response = await stack.http.get(
                "/api/v1/tasks",
                params={"scope": "all", "status": "open", "limit": PAGE},
                headers=headers[name],
            )
            api_ms.append((time.perf_counter() - began) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"inbox of {name}: {response.status_code} {response.text[:300]}")

        say("inbox: the same SQL directly")
        sql_ms: list[float] = []
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            statements = {n: _statements([n], groups_of[n]) for n in people}
            for name in people:  # warm, and check the count is the endpoint's
                cur = await conn.execute(*statements[name][0])
                counted = (await cur.fetchone() or [0])[0]
                if counted != seen[name]:
                    raise RuntimeError(f"{name}: SQL counts {counted}, the API {seen[name]}")
            for name in order:
                (count_sql, count_params), (page_sql, page_params) = statements[name]
                began = time.perf_counter()
                await (await conn.execute(count_sql, count_params)).fetchone()
                await (await conn.execute(page_sql, page_params)).fetchall()
                sql_ms.append((time.perf_counter() - began) * 1000)
            typical = sorted(people, key=lambda n: seen[n])[len(people) // 2]
            query = inbox_query(usernames=[typical], groups=groups_of[typical], everything=True)
            plans = []
            for statement in (
                query.limit(PAGE),
                select(func.count()).select_from(query.order_by(None).subquery()),
            ):
                cur = await conn.execute(f"EXPLAIN (ANALYZE, BUFFERS OFF) {_literal(statement)}")
                plans.append([r[0] for r in await cur.fetchall()])

    counts = sorted(seen.values())
    memberships = [len(groups_of[n]) for n in people]
    api95, sql95 = p95(api_ms), p95(sql_ms)
    data = (
        f"{shape[0]:,} tasks ({shape[1]:,} open, {shape[2]:,} of them overdue), {shape[3]:,} "
        f"people, {shape[4]} groups, {shape[5]:,} memberships; loaded in {load_s:.0f} s "
        f"(INSERT … SELECT, then VACUUM (ANALYZE)); {len(order)} sequential requests over {len(people)} "
        f"people with {min(memberships)}–{max(memberships)} groups each, who see "
        f"{counts[0]:,}–{counts[-1]:,} open tasks (median {counts[len(counts) // 2]:,})"
    )
    page_plan = " / ".join(line.strip() for line in plans[0][:6])
    count_plan = " / ".join(line.strip() for line in plans[1][:6])
    return [
        Row(
            "inbox",
            f"GET /api/v1/tasks?scope=all&status=open&limit={PAGE} p95",
            api95,
            "ms",
            sql95,
            target="≤ 50 ms and ≤ 2 × SQL",
            met=api95 <= 50 and api95 <= 2 * sql95,
            notes=[
                data,
                f"plan of the page for {typical} ({seen[typical]:,} open tasks): {page_plan}",
                f"plan of the count: {count_plan}",
            ],
        ),
        Row(
            "inbox",
            "the same, p50",
            p50(api_ms),
            "ms",
            p50(sql_ms),
            target="(report)",
        ),
    ]
