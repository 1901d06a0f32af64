//! The fleet scenario's table, for stdout and docs/benchmarks.md.

use serde_json::Value;

pub fn markdown(v: &Value) -> String {
    let f = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64);
    let num = |x: Option<f64>, p: usize| x.map_or("—".to_owned(), |x| format!("{x:.p$}"));
    let mut o = format!(
        "\nfleet: sites at the case study's load each (100 orders/min: placed, bumped by each station, completed) into one PostgreSQL (fsync on) and one Redis on this machine, through docketd's own relays{}.\n\n\
         | sites | docketd processes + in-process | events | ingest events/s | sync lag p50 / p99 / max (s) | lost | dup | Redis lost | PostgreSQL CPU % | bytes/event | MB per site-day |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
        match v["partitions"].as_u64() {
            Some(n) if n > 0 => format!(", the schema partitioned by site into {n}"),
            _ => String::new(),
        }
    );
    for r in v["runs"].as_array().into_iter().flatten() {
        o += &format!(
            "| {} | {} + {} | {} | {} | {} / {} / {} | {} | {} | {} | {} | {} | {} |\n",
            r["sites"],
            r["docketd_processes"],
            r["in_process_sites"],
            r["events"],
            num(f(r, "events_per_s"), 0),
            num(f(r, "lag_p50_s"), 3),
            num(f(r, "lag_p99_s"), 3),
            num(f(r, "lag_max_s"), 3),
            r["lost"],
            r["duplicated"],
            r["redis_lost"],
            num(f(r, "pg_cpu_pct"), 0),
            num(f(r, "bytes_per_event"), 0),
            num(f(r, "bytes_per_site_day").map(|b| b / 1e6), 0),
        );
    }
    let c = &v["catch_up"];
    o += &format!(
        "\nfleet catch-up: {} sites back at once from {} minutes offline ({} events): PostgreSQL caught up in {} s, Redis in {} s ({} events/s into PostgreSQL, its CPU {} %); lost {}, duplicated {}, Redis lost {}. CPU until both were caught up: PostgreSQL {} core-s, the simulated boxes' stores and relays {} core-s. (A site-day is the case study's three-hour rush at its load.)\n",
        c["sites"], c["offline_minutes"], c["events"],
        num(f(c, "postgres_caught_up_s"), 1), num(f(c, "redis_caught_up_s"), 1),
        num(f(c, "events_per_s"), 0), num(f(c, "pg_cpu_pct"), 0),
        c["lost"], c["duplicated"], c["redis_lost"],
        num(f(c, "pg_cpu_s"), 0), num(f(c, "sim_cpu_s"), 0),
    );
    o
}
