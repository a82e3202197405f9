//! The embedding API: a Session without a server.

use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, RecordBatch, StringViewArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use quiverdb::{Database, Session, StatementResult};

#[tokio::test]
async fn arrow_batches_become_a_queryable_table() {
    let mut session = Session::new(Database::new());
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8View, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3])),
            Arc::new(StringViewArray::from(vec![Some("a"), None, Some("c")])),
        ],
    )
    .unwrap();
    let rows = session
        .create_table_from_batches("Loaded", schema, vec![batch])
        .await
        .unwrap();
    assert_eq!(rows, 3);
    let mut results = session
        .execute_sql("SELECT count(name) AS named, sum(id) AS total FROM loaded")
        .await;
    let Some(Ok(StatementResult::Rows { batches, .. })) = results.pop() else {
        panic!("no rows");
    };
    let text = quiverdb::repl::render_table(&batches[0].schema(), &batches).unwrap();
    assert!(text.contains("     2 |     6"), "{text}");
    assert!(session
        .create_table_from_batches("bad name!", Arc::new(Schema::empty()), vec![])
        .await
        .is_err());
}
