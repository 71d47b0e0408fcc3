"""Example analyst queries over the gold tables, by logical names.

The same text is in docs/ANALYSTS.md and runs in notebooks/queries/gold_analyst_queries.py; the tests run
every query here against a lakehouse built from the sample and check its result.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Query:
    name: str
    question: str
    sql: str


QUERIES: tuple[Query, ...] = (
    Query(
        "carrier_ranking_january",
        "Which carriers were most punctual in January 2013?",
        """SELECT carrier, carrier_name, flights, completed_flights, on_time_share, p90_arr_delay
FROM gold.carrier_monthly_performance
WHERE month_start = DATE'2013-01-01'
ORDER BY on_time_share DESC, carrier""",
    ),
    Query(
        "busiest_routes",
        "Which routes had the most flights, and how punctual were they?",
        """WITH routes AS (
  SELECT origin, dest, sum(flights) AS flights, sum(on_time_flights) AS on_time,
         sum(completed_flights) AS completed
  FROM gold.route_daily_stats
  GROUP BY origin, dest
)
SELECT origin, dest, flights, round(on_time / nullif(completed, 0), 4) AS on_time_share
FROM routes
ORDER BY flights DESC, origin, dest
LIMIT 10""",
    ),
    Query(
        "jfk_lax_independence_day",
        "How did JFK to LAX do on 4 July 2013?",
        """SELECT flight_date, origin, dest, carriers, flights, cancelled_flights, on_time_share, avg_arr_delay
FROM gold.route_daily_stats
WHERE origin = 'JFK' AND dest = 'LAX' AND flight_date = DATE'2013-07-04'""",
    ),
    Query(
        "delay_by_visibility",
        "How much later do flights leave when visibility is poor?",
        """SELECT visibility, sum(flights) AS flights,
       round(sum(total_dep_delay_min) / sum(flights), 2) AS avg_dep_delay,
       round(sum(delayed_flights) / sum(flights), 4) AS delayed_share
FROM gold.airport_weather_delays
GROUP BY visibility
ORDER BY avg_dep_delay DESC""",
    ),
    Query(
        "failed_checks",
        "Which data-quality checks found something, in the latest run of each table?",
        """WITH latest AS (
  SELECT table_name, max(checked_at) AS checked_at FROM gold.dq_results GROUP BY table_name
)
SELECT r.table_name, r.check_name, r.action, r.rows_failed, r.rows_checked
FROM gold.dq_results r JOIN latest USING (table_name, checked_at)
WHERE NOT r.passed
ORDER BY r.rows_failed DESC, r.table_name, r.check_name""",
    ),
    Query(
        "label_balance_by_carrier",
        "What share of each carrier's completed flights arrive 15+ minutes late (the model's label)?",
        """SELECT carrier, count(*) AS flights, round(avg(label), 4) AS delayed_share,
       round(avg(carrier_delay_rate_30d), 4) AS avg_trailing_30d_rate
FROM gold.flight_features
GROUP BY carrier
ORDER BY delayed_share DESC, carrier""",
    ),
)


def by_name(name: str) -> Query:
    for q in QUERIES:
        if q.name == name:
            return q
    raise KeyError(name)
