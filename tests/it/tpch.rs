//! TPC-H (SF 0.05, generated in process, lineitem in several segments)
//! answered twice on one database: with the scan's zone-map pruning,
//! DataFusion's dynamic filters and our join ordering, and with all three
//! switched off. The scan may only drop rows that cannot pass and a join
//! order cannot change an inner join's rows, so every answer must be the
//! same; EXPLAIN shows that each of them did something.

use datafusion::arrow::record_batch::RecordBatch;
use quiverdb::{Database, Session, StatementResult};

const SF: f64 = 0.05;

#[path = "../../examples/common/tpch.rs"]
mod tpch_data;
use tpch_data::{batches_of, sql_type, TABLES};

/// Each table through SQL DDL (the types a COPY load gets) and
/// INSERT ... SELECT from the generated batches.
async fn load(session: &mut Session) {
    for table in TABLES {
        let reader = batches_of(table, SF);
        let schema = reader.schema();
        let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        let columns: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| format!("{} {} NOT NULL", f.name(), sql_type(f.data_type())))
            .collect();
        session
            .create_table_from_batches(&format!("gen_{table}"), schema, batches)
            .await
            .unwrap();
        let sql = format!(
            "CREATE TABLE {table} ({}); INSERT INTO {table} SELECT * FROM gen_{table}; DROP TABLE gen_{table}",
            columns.join(", ")
        );
        for result in session.execute_sql(&sql).await {
            result.unwrap_or_else(|e| panic!("{table}: {e}"));
        }
    }
}

async fn rendered(session: &mut Session, sql: &str) -> String {
    let mut out = String::new();
    for result in session.execute_sql(sql).await {
        match result {
            Ok(StatementResult::Rows {
                batches, schema, ..
            }) => {
                out += &quiverdb::repl::render_table(&schema, &batches).unwrap();
            }
            Ok(_) => {}
            Err(e) => panic!("{sql}: {e}"),
        }
    }
    out
}

/// The value of metric `name` summed over an EXPLAIN ANALYZE text.
fn metric(plan: &str, name: &str) -> u64 {
    plan.match_indices(&format!("{name}="))
        .map(|(at, m)| {
            plan[at + m.len()..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect::<String>()
                .parse::<u64>()
                .unwrap_or(0)
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_do_not_depend_on_pruning_or_dynamic_filters() {
    let db = Database::new();
    let mut fast = Session::new(db.clone());
    load(&mut fast).await;
    let mut plain = Session::new(db.clone());
    rendered(
        &mut plain,
        "SET datafusion.optimizer.enable_dynamic_filter_pushdown = false; \
         SET datafusion.execution.parquet.pruning = false; \
         SET datafusion.optimizer.join_reordering = false",
    )
    .await;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/tpch");
    for q in 1..=22 {
        let sql = std::fs::read_to_string(format!("{dir}/q{q}.sql")).unwrap();
        let with = rendered(&mut fast, &sql).await;
        let without = rendered(&mut plain, &sql).await;
        assert!(with.lines().count() > 2, "Q{q} answered nothing:\n{with}");
        assert_eq!(with, without, "Q{q}");
    }

    // lineitem is stored in l_orderkey order, several segments: a range
    // of keys skips most of them.
    let sql = "EXPLAIN ANALYZE SELECT count(*) FROM lineitem WHERE l_orderkey < 1000";
    let plan = rendered(&mut fast, sql).await;
    assert!(metric(&plan, "batches_pruned") > 0, "{plan}");
    let plan = rendered(&mut plain, sql).await;
    assert_eq!(metric(&plan, "batches_pruned"), 0, "{plan}");

    // Q17: the join with the few matching parts filters lineitem's rows
    // before the aggregate of the correlated subquery.
    let sql = std::fs::read_to_string(format!("{dir}/q17.sql")).unwrap();
    let plan = rendered(&mut fast, &format!("EXPLAIN ANALYZE {sql}")).await;
    assert!(metric(&plan, "rows_filtered") > 0, "{plan}");

    // Q7: supplier meets its nation filter before it meets lineitem
    // (FROM order joins supplier and lineitem first).
    let sql = std::fs::read_to_string(format!("{dir}/q7.sql")).unwrap();
    let nation_join = "Inner Join: supplier.s_nationkey = n1.n_nationkey";
    let lineitem_join = "Inner Join: lineitem.l_suppkey = supplier.s_suppkey";
    let plan = rendered(&mut fast, &format!("EXPLAIN {sql}")).await;
    let (n, l) = (plan.find(nation_join), plan.find(lineitem_join));
    assert!(n.is_some() && l.is_some() && n > l, "{plan}");
    let plan = rendered(&mut plain, &format!("EXPLAIN {sql}")).await;
    let from_order = "Inner Join: supplier.s_suppkey = lineitem.l_suppkey";
    let (n, l) = (plan.find(nation_join), plan.find(from_order));
    assert!(n.is_some() && l.is_some() && n < l, "{plan}");

    // Q5: customer meets the nations of its region directly (c_nationkey =
    // s_nationkey = n_nationkey make one class), before orders and
    // lineitem; the query itself never compares customer with nation.
    let sql = std::fs::read_to_string(format!("{dir}/q5.sql")).unwrap();
    let direct = |plan: &str| {
        plan.lines().any(|l| {
            l.contains("Inner Join:")
                && l.contains("customer.c_nationkey")
                && l.contains("nation.n_nationkey")
        })
    };
    let plan = rendered(&mut fast, &format!("EXPLAIN {sql}")).await;
    assert!(direct(&plan), "{plan}");
    let plan = rendered(&mut plain, &format!("EXPLAIN {sql}")).await;
    assert!(!direct(&plan), "{plan}");
}

#[tokio::test]
async fn min_max_and_counts_stay_right_after_deletes() {
    let db = Database::new();
    let mut session = Session::new(db);
    let setup = "CREATE TABLE z (k int, s text); \
                 INSERT INTO z SELECT g, 'v' || g FROM generate_series(1, 100000) g";
    rendered(&mut session, setup).await;
    let answer = "SELECT min(k), max(k), count(k), min(s), max(s) FROM z";
    let text = rendered(&mut session, answer).await;
    assert!(text.contains("1 | 100000 | 100000 | v1 "), "{text}");
    // A deleted row must not linger in min and max.
    rendered(&mut session, "DELETE FROM z WHERE k IN (1, 100000)").await;
    let text = rendered(&mut session, answer).await;
    assert!(text.contains("2 | 99999 | 99998 | v10 "), "{text}");
    // A filter on a pruned range still counts exactly.
    let text = rendered(&mut session, "SELECT count(*) FROM z WHERE k > 99990").await;
    assert!(text.contains(" 9"), "{text}");
    let text = rendered(&mut session, "SELECT count(*) FROM z WHERE k < 0").await;
    assert!(text.contains(" 0"), "{text}");
}
