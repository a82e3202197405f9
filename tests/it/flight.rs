//! Arrow Flight SQL beside pgwire: arrow-flight's own `FlightSqlServiceClient`
//! against a real server, for every call the front end answers, with
//! pgwire looking at the same data.

use std::time::{Duration, Instant};

use arrow_flight::error::FlightError;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{
    CommandGetDbSchemas, CommandGetImportedKeys, CommandGetPrimaryKeys, CommandGetTables,
    CommandGetXdbcTypeInfo, CommandStatementIngest, EndTransaction, SqlInfo,
    TableDefinitionOptions, TableExistsOption, TableNotExistOption,
};
use arrow_flight::{Action, CancelFlightInfoRequest, CancelFlightInfoResult, FlightInfo};
use datafusion::arrow::array::{Array, AsArray, Int32Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Int64Type, Schema};
use futures::{StreamExt, TryStreamExt};
use prost::Message;
use std::sync::Arc;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::Code;

use crate::common::TestServer;

fn start() -> TestServer {
    TestServer::start_with(&["--memory", "--flight-listen", "127.0.0.1:0"])
}

async fn channel(server: &TestServer) -> Channel {
    let port = server.flight_port.expect("a Flight SQL port");
    Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
        .expect("connect to Flight SQL")
}

/// A client logged in as `quiver` (no passwords on a fresh server).
async fn client(server: &TestServer) -> FlightSqlServiceClient<Channel> {
    let mut client = FlightSqlServiceClient::new(channel(server).await);
    client.handshake("quiver", "").await.expect("handshake");
    client
}

/// Every batch of every endpoint.
async fn fetch(client: &mut FlightSqlServiceClient<Channel>, info: FlightInfo) -> Vec<RecordBatch> {
    let mut batches = Vec::new();
    for endpoint in info.endpoint {
        let stream = client.do_get(endpoint.ticket.unwrap()).await.unwrap();
        batches.extend(stream.try_collect::<Vec<_>>().await.unwrap());
    }
    batches
}

async fn query(client: &mut FlightSqlServiceClient<Channel>, sql: &str) -> Vec<RecordBatch> {
    let info = client.execute(sql.to_string(), None).await.unwrap();
    fetch(client, info).await
}

fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}

fn status(e: FlightError) -> tonic::Status {
    match e {
        FlightError::Tonic(status) => *status,
        other => panic!("expected a gRPC status, got {other:?}"),
    }
}

/// The SQLSTATE a status carries in its metadata.
fn sqlstate(status: &tonic::Status) -> String {
    status
        .metadata()
        .get(quiverdb::flight::SQLSTATE_KEY)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn statements_run_at_get_flight_info_and_rows_stream_at_do_get() {
    let server = start();
    let mut flight = client(&server).await;
    // DDL and DML sent as queries (as ADBC's cursor.execute does) take
    // effect once, even though nobody fetches their (empty) results.
    flight
        .execute(
            "CREATE TABLE t (id int PRIMARY KEY, name text, price numeric(10,2))".into(),
            None,
        )
        .await
        .unwrap();
    flight
        .execute(
            "INSERT INTO t VALUES (1, 'one', 1.50), (2, 'two', NULL)".into(),
            None,
        )
        .await
        .unwrap();
    let inserted = flight
        .execute_update("INSERT INTO t VALUES (3, 'three', 3.00)".into(), None)
        .await
        .unwrap();
    assert_eq!(inserted, 1);
    let pg = server.connect().await;
    let count: i64 = pg
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 3, "every statement ran exactly once");

    let info = flight
        .execute("SELECT id, name, price FROM t ORDER BY id".into(), None)
        .await
        .unwrap();
    let announced = info.clone().try_decode_schema().unwrap();
    let batches = fetch(&mut flight, info).await;
    assert_eq!(rows(&batches), 3);
    // The stream's schema is exactly the announced one, nullability and all.
    assert_eq!(batches[0].schema().as_ref(), &announced);
    assert_eq!(announced.field(1).data_type(), &DataType::Utf8);
    assert_eq!(
        announced.field(0).metadata()["ARROW:FLIGHT:SQL:TYPE_NAME"],
        "int4"
    );
    let names = batches[0].column(1).as_string::<i32>();
    assert_eq!(names.value(0), "one");
    assert!(batches[0].column(2).is_null(1));

    // An error keeps its SQLSTATE; the session goes on.
    let missing = status(
        flight
            .execute("SELECT * FROM nope".into(), None)
            .await
            .unwrap_err(),
    );
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(sqlstate(&missing), "42P01");
    assert!(missing.message().contains("nope"), "{}", missing.message());
    // An error while rows are produced arrives in the DoGet.
    let info = flight.execute("SELECT 1/0".into(), None).await.unwrap();
    let stream = flight
        .do_get(info.endpoint[0].ticket.clone().unwrap())
        .await;
    let zero = match stream {
        Ok(stream) => stream
            .try_collect::<Vec<_>>()
            .await
            .map(|_| ())
            .unwrap_err(),
        Err(e) => e,
    };
    assert_eq!(sqlstate(&status(zero)), "22012");
    assert_eq!(rows(&query(&mut flight, "SELECT 1").await), 1);

    // A ticket is fetched once.
    let info = flight.execute("SELECT 1".into(), None).await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let first = flight.do_get(ticket.clone()).await.unwrap();
    let _: Vec<RecordBatch> = first.try_collect().await.unwrap();
    let again = flight.do_get(ticket).await;
    let again = match again {
        Ok(stream) => stream
            .try_collect::<Vec<_>>()
            .await
            .map(|_| ())
            .unwrap_err(),
        Err(e) => e,
    };
    assert_eq!(status(again).code(), Code::NotFound);
}

#[tokio::test]
async fn a_result_bigger_than_the_grpc_message_limit_streams_in_pieces() {
    let server = start();
    let mut flight = client(&server).await;
    // About 40 MB of text, ten times the client's 4 MiB message limit.
    let batches = query(
        &mut flight,
        "SELECT g, repeat('x', 40) AS pad FROM generate_series(1, 1000000) AS s(g)",
    )
    .await;
    assert_eq!(rows(&batches), 1_000_000);
    let last = batches.last().unwrap();
    let g = last.column(0).as_primitive::<Int64Type>();
    assert_eq!(g.value(g.len() - 1), 1_000_000);
}

#[tokio::test]
async fn prepared_statements_take_question_mark_and_dollar_parameters() {
    let server = start();
    let mut flight = client(&server).await;
    flight
        .execute_update("CREATE TABLE p (id int, name text)".into(), None)
        .await
        .unwrap();
    let mut insert = flight
        .prepare("INSERT INTO p VALUES (?, ?)".into(), None)
        .await
        .unwrap();
    let params = Schema::new(vec![
        Field::new("a", DataType::Int32, false),
        Field::new("b", DataType::Utf8, false),
    ]);
    let batch = RecordBatch::try_new(
        Arc::new(params),
        vec![
            Arc::new(Int32Array::from(vec![1, 2, 3])),
            Arc::new(StringArray::from(vec!["a", "b", "c"])),
        ],
    )
    .unwrap();
    insert.set_parameters(batch).unwrap();
    assert_eq!(insert.execute_update().await.unwrap(), 3);
    insert.close().await.unwrap();

    let mut select = flight
        .prepare(
            "SELECT name FROM p WHERE id = $1 AND name <> '?'".into(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(select.parameter_schema().unwrap().fields().len(), 1);
    assert_eq!(select.dataset_schema().unwrap().field(0).name(), "name");
    let one = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)])),
        vec![Arc::new(Int64Array::from(vec![2]))],
    )
    .unwrap();
    select.set_parameters(one).unwrap();
    let info = select.execute().await.unwrap();
    let batches = fetch(&mut flight, info).await;
    assert_eq!(rows(&batches), 1);
    assert_eq!(batches[0].column(0).as_string::<i32>().value(0), "b");
}

#[tokio::test]
async fn transactions_commit_and_roll_back() {
    let server = start();
    let mut flight = client(&server).await;
    flight
        .execute_update("CREATE TABLE tx (v int)".into(), None)
        .await
        .unwrap();
    let txn = flight.begin_transaction().await.unwrap();
    flight
        .execute_update("INSERT INTO tx VALUES (1), (2)".into(), Some(txn.clone()))
        .await
        .unwrap();
    // Inside, the rows are there; outside (pgwire), not yet.
    let inside = flight
        .execute("SELECT count(*) FROM tx".into(), Some(txn.clone()))
        .await
        .unwrap();
    let inside = fetch(&mut flight, inside).await;
    assert_eq!(inside[0].column(0).as_primitive::<Int64Type>().value(0), 2);
    let pg = server.connect().await;
    let outside: i64 = pg
        .query_one("SELECT count(*) FROM tx", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(outside, 0);
    flight
        .end_transaction(txn, EndTransaction::Rollback)
        .await
        .unwrap();
    let after: i64 = pg
        .query_one("SELECT count(*) FROM tx", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(after, 0, "a rolled back transaction leaves nothing");

    let txn = flight.begin_transaction().await.unwrap();
    flight
        .execute_update("INSERT INTO tx VALUES (3)".into(), Some(txn.clone()))
        .await
        .unwrap();
    flight
        .end_transaction(txn.clone(), EndTransaction::Commit)
        .await
        .unwrap();
    let after: i64 = pg
        .query_one("SELECT count(*) FROM tx", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(after, 1);
    // The ended transaction is no longer a transaction to name.
    let stale = flight
        .execute_update("INSERT INTO tx VALUES (4)".into(), Some(txn))
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&status(stale)), "25P01");
}

#[tokio::test]
async fn a_million_rows_are_ingested_in_one_transaction_with_constraints_checked() {
    let server = start();
    let mut flight = client(&server).await;
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int32, false),
        Field::new("label", DataType::Utf8, true),
    ]));
    let batches: Vec<RecordBatch> = (0..10)
        .map(|chunk| {
            let ids: Vec<i32> = (chunk * 100_000..(chunk + 1) * 100_000).collect();
            let labels: Vec<Option<String>> = ids
                .iter()
                .map(|i| (i % 7 != 0).then(|| format!("row {i}")))
                .collect();
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int32Array::from(ids)),
                    Arc::new(StringArray::from(labels)),
                ],
            )
            .unwrap()
        })
        .collect();
    let create = CommandStatementIngest {
        table_definition_options: Some(TableDefinitionOptions {
            if_not_exist: TableNotExistOption::Create as i32,
            if_exists: TableExistsOption::Fail as i32,
        }),
        table: "ingested".into(),
        ..Default::default()
    };
    let stream = futures::stream::iter(batches.clone().into_iter().map(Ok));
    let count = flight.execute_ingest(create.clone(), stream).await.unwrap();
    assert_eq!(count, 1_000_000);
    let pg = server.connect().await;
    let row = pg
        .query_one("SELECT count(*), count(label), sum(id) FROM ingested", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 1_000_000);
    assert_eq!(row.get::<_, i64>(1), 1_000_000 - 142_858);
    assert_eq!(row.get::<_, i64>(2), 499_999_500_000);

    // Creating it again fails; appending adds; replacing starts over.
    let again = futures::stream::iter(vec![Ok(batches[0].clone())]);
    let exists = flight
        .execute_ingest(create.clone(), again)
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&status(exists)), "42P07");
    pg.batch_execute("ALTER TABLE ingested ADD PRIMARY KEY (id)")
        .await
        .unwrap();
    let append = CommandStatementIngest {
        table_definition_options: Some(TableDefinitionOptions {
            if_not_exist: TableNotExistOption::Fail as i32,
            if_exists: TableExistsOption::Append as i32,
        }),
        ..create.clone()
    };
    // A duplicate key fails the whole ingest: nothing of it is stored.
    let duplicate = futures::stream::iter(vec![Ok(batches[0].clone())]);
    let violation = flight
        .execute_ingest(append.clone(), duplicate)
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&status(violation)), "23505");
    let count: i64 = pg
        .query_one("SELECT count(*) FROM ingested", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 1_000_000);
    let replace = CommandStatementIngest {
        table_definition_options: Some(TableDefinitionOptions {
            if_not_exist: TableNotExistOption::Create as i32,
            if_exists: TableExistsOption::Replace as i32,
        }),
        ..create
    };
    let small = futures::stream::iter(vec![Ok(batches[0].clone())]);
    assert_eq!(
        flight.execute_ingest(replace, small).await.unwrap(),
        100_000
    );
    let count: i64 = pg
        .query_one("SELECT count(*) FROM ingested", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 100_000);
}

#[tokio::test]
async fn ingests_of_small_batches_foreign_keys_and_failed_streams() {
    let server = start();
    let mut flight = client(&server).await;
    let pg = server.connect().await;
    pg.batch_execute(
        "CREATE TABLE parent (id int PRIMARY KEY);
         INSERT INTO parent SELECT * FROM generate_series(1, 10);
         CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent (id));",
    )
    .await
    .unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int32, false),
        Field::new("parent_id", DataType::Int32, true),
    ]));
    let batch = |from: i32, rows: i32, parent: Option<i32>| {
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int32Array::from_iter_values(from..from + rows)),
                Arc::new(Int32Array::from(vec![parent; rows as usize])),
            ],
        )
        .unwrap()
    };
    let append = |table: &str| CommandStatementIngest {
        table_definition_options: Some(TableDefinitionOptions {
            if_not_exist: TableNotExistOption::Create as i32,
            if_exists: TableExistsOption::Append as i32,
        }),
        table: table.into(),
        ..Default::default()
    };
    // 2,000 batches of 50 rows make a new table.
    let small: Vec<_> = (0..2000)
        .map(|i| Ok(batch(i * 50, 50, Some(i % 10))))
        .collect();
    let count = flight
        .execute_ingest(append("small"), futures::stream::iter(small))
        .await
        .unwrap();
    assert_eq!(count, 100_000);
    let row = pg
        .query_one(
            "SELECT count(*), sum(id), count(DISTINCT id) = count(*) FROM small",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 100_000);
    assert_eq!(row.get::<_, i64>(1), 4_999_950_000);
    assert!(row.get::<_, bool>(2), "every row once");

    // A table with a foreign key: rows that reference nothing fail the
    // whole ingest; rows that do are stored.
    let orphans = vec![Ok(batch(1, 10, Some(3))), Ok(batch(11, 10, Some(99)))];
    let violation = flight
        .execute_ingest(append("child"), futures::stream::iter(orphans))
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&status(violation)), "23503");
    let good = vec![Ok(batch(1, 10, Some(3))), Ok(batch(11, 10, None))];
    let count = flight
        .execute_ingest(append("child"), futures::stream::iter(good))
        .await
        .unwrap();
    assert_eq!(count, 20);
    let row = pg
        .query_one("SELECT count(*), count(parent_id) FROM child", &[])
        .await
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (20, 10));

    // A value the column's type cannot hold is an error, never a NULL.
    let mixed = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("parent_id", DataType::Utf8, true),
    ]));
    let bad = |id: i64, parent: &str| {
        RecordBatch::try_new(
            mixed.clone(),
            vec![
                Arc::new(Int64Array::from(vec![id])),
                Arc::new(StringArray::from(vec![parent])),
            ],
        )
        .unwrap()
    };
    for (rows, code) in [(bad(100, "four"), "22P02"), (bad(1 << 40, "4"), "22003")] {
        let refused = flight
            .execute_ingest(append("small"), futures::stream::iter(vec![Ok(rows)]))
            .await
            .unwrap_err();
        assert_eq!(sqlstate(&status(refused)), code);
    }
    let count: i64 = pg
        .query_one("SELECT count(*) FROM small", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 100_000);

    // A client that goes away mid-stream stores nothing, and the table
    // its ingest was to create is not left behind. The client talks
    // through a relay that is cut once the table exists.
    drop(flight);
    let relay = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay_port = relay.local_addr().unwrap().port();
    let server_port = server.flight_port.unwrap();
    let (cut, cut_off) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let (mut client_side, _) = relay.accept().await.unwrap();
        let mut server_side = tokio::net::TcpStream::connect(("127.0.0.1", server_port))
            .await
            .unwrap();
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut client_side, &mut server_side) => {}
            _ = cut_off => {}
        }
    });
    let mut relayed = FlightSqlServiceClient::new(
        Endpoint::from_shared(format!("http://127.0.0.1:{relay_port}"))
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    relayed.handshake("quiver", "").await.unwrap();
    let sent = futures::stream::iter(vec![Ok(batch(0, 100_000, Some(1)))]);
    let stalled = tokio::spawn(async move {
        relayed
            .execute_ingest(append("half_made"), sent.chain(futures::stream::pending()))
            .await
    });
    let exists = "SELECT count(*) FROM information_schema.tables WHERE table_name = 'half_made'";
    let deadline = Instant::now() + Duration::from_secs(10);
    while pg.query_one(exists, &[]).await.unwrap().get::<_, i64>(0) == 0 {
        assert!(Instant::now() < deadline, "half_made was never made");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = cut.send(());
    stalled.abort();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let tables: i64 = pg.query_one(exists, &[]).await.unwrap().get(0);
        if tables == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "half_made is still there");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn catalog_calls_describe_tables_keys_and_the_server() {
    let server = start();
    let pg = server.connect().await;
    pg.batch_execute(
        "CREATE TABLE parent (id int PRIMARY KEY, name text NOT NULL);
         CREATE TABLE child (id int, parent_id int REFERENCES parent (id) ON DELETE CASCADE,
                             PRIMARY KEY (id, parent_id));
         CREATE VIEW names AS SELECT name FROM parent;",
    )
    .await
    .unwrap();
    let mut flight = client(&server).await;

    let catalogs = {
        let info = flight.get_catalogs().await.unwrap();
        fetch(&mut flight, info).await
    };
    assert_eq!(catalogs[0].column(0).as_string::<i32>().value(0), "quiver");

    // No filter given means no filter (as ADBC sends).
    let schemas = {
        let info = flight
            .get_db_schemas(CommandGetDbSchemas::default())
            .await
            .unwrap();
        fetch(&mut flight, info).await
    };
    let names: Vec<&str> = schemas[0]
        .column(1)
        .as_string::<i32>()
        .iter()
        .flatten()
        .collect();
    assert!(names.contains(&"public"), "{names:?}");

    let tables = {
        let info = flight
            .get_tables(CommandGetTables {
                db_schema_filter_pattern: Some("public".into()),
                include_schema: true,
                ..Default::default()
            })
            .await
            .unwrap();
        fetch(&mut flight, info).await
    };
    let batch = &tables[0];
    let table_names: Vec<&str> = batch
        .column(2)
        .as_string::<i32>()
        .iter()
        .flatten()
        .collect();
    let kinds: Vec<&str> = batch
        .column(3)
        .as_string::<i32>()
        .iter()
        .flatten()
        .collect();
    assert_eq!(table_names, ["child", "names", "parent"]);
    assert_eq!(kinds, ["TABLE", "VIEW", "TABLE"]);
    let parent_schema = batch.column(4).as_binary::<i32>().value(2);
    let parent_schema =
        datafusion::arrow::ipc::convert::try_schema_from_ipc_buffer(parent_schema).unwrap();
    assert_eq!(parent_schema.field(1).name(), "name");
    assert!(!parent_schema.field(1).is_nullable());

    let keys = {
        let info = flight
            .get_primary_keys(CommandGetPrimaryKeys {
                table: "child".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        fetch(&mut flight, info).await
    };
    let columns: Vec<&str> = keys[0]
        .column(3)
        .as_string::<i32>()
        .iter()
        .flatten()
        .collect();
    assert_eq!(columns, ["id", "parent_id"]);
    let sequence: Vec<i32> = keys[0]
        .column(5)
        .as_primitive::<Int32Type>()
        .iter()
        .flatten()
        .collect();
    assert_eq!(sequence, [1, 2]);

    let imported = {
        let info = flight
            .get_imported_keys(CommandGetImportedKeys {
                table: "child".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        fetch(&mut flight, info).await
    };
    assert_eq!(rows(&imported), 1);
    assert_eq!(imported[0].column(2).as_string::<i32>().value(0), "parent");
    assert_eq!(
        imported[0].column(7).as_string::<i32>().value(0),
        "parent_id"
    );
    // ON DELETE CASCADE is rule 0.
    assert_eq!(
        imported[0]
            .column(12)
            .as_primitive::<datafusion::arrow::datatypes::UInt8Type>()
            .value(0),
        0
    );

    let info = {
        let info = flight
            .get_sql_info(vec![
                SqlInfo::FlightSqlServerName,
                SqlInfo::FlightSqlServerTransaction,
            ])
            .await
            .unwrap();
        fetch(&mut flight, info).await
    };
    assert_eq!(rows(&info), 2);
    let types = {
        let info = flight
            .get_xdbc_type_info(CommandGetXdbcTypeInfo::default())
            .await
            .unwrap();
        fetch(&mut flight, info).await
    };
    assert!(rows(&types) > 10);
    let table_types = {
        let info = flight.get_table_types().await.unwrap();
        fetch(&mut flight, info).await
    };
    assert_eq!(rows(&table_types), 3);
}

#[tokio::test]
async fn a_cancelled_result_stops_and_the_session_is_in_pg_stat_activity() {
    let server = start();
    let mut flight = client(&server).await;
    let info = flight
        .execute(
            "SELECT count(*) FROM generate_series(1, 100000000) a CROSS JOIN generate_series(1, 100) b"
                .into(),
            None,
        )
        .await
        .unwrap();
    let action = Action {
        r#type: "CancelFlightInfo".into(),
        body: CancelFlightInfoRequest {
            info: Some(info.clone()),
        }
        .encode_to_vec()
        .into(),
    };
    let mut results = flight.do_action(action).await.unwrap();
    let result = results.message().await.unwrap().unwrap();
    let result = CancelFlightInfoResult::decode(result.body).unwrap();
    assert_eq!(result.status, 1, "CANCELLED");
    let fetched = match flight
        .do_get(info.endpoint[0].ticket.clone().unwrap())
        .await
    {
        Ok(stream) => stream.try_collect::<Vec<_>>().await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(fetched.is_err(), "a cancelled result sends no rows");

    // A DoGet cancelled while it streams ends with 57014, at once.
    let info = flight
        .execute(
            "SELECT a, b FROM generate_series(1, 100000000) a CROSS JOIN generate_series(1, 100) b"
                .into(),
            None,
        )
        .await
        .unwrap();
    let mut stream = flight
        .do_get(info.endpoint[0].ticket.clone().unwrap())
        .await
        .unwrap();
    let _first = stream.try_next().await.unwrap();
    let mut other = client(&server).await;
    let action = Action {
        r#type: "CancelFlightInfo".into(),
        body: CancelFlightInfoRequest { info: Some(info) }
            .encode_to_vec()
            .into(),
    };
    // Another session of the same user may cancel it, as pg_cancel_backend.
    let mut results = other.do_action(action).await.unwrap();
    let _ = results.message().await.unwrap();
    let started = Instant::now();
    let ended = loop {
        match stream.try_next().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("a cancelled stream ended normally"),
            Err(e) => break status(e),
        }
    };
    assert_eq!(ended.code(), Code::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(5));

    let pg = server.connect().await;
    let flight_sessions: i64 = pg
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'flight sql' AND client_addr = '127.0.0.1'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(flight_sessions, 2);
    // pg_terminate_backend ends them: their tokens name nothing after.
    pg.batch_execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'flight sql'",
    )
    .await
    .unwrap();
    let ended = status(flight.execute("SELECT 1".into(), None).await.unwrap_err());
    assert_eq!(ended.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn logins_follow_the_same_rules_as_postgres_clients() {
    let dir = crate::security::data_dir_with_admin();
    let server = crate::security::serve(&dir, &["--flight-listen", "127.0.0.1:0"]);
    let pg = crate::security::login(&server, "admin", "adminpw")
        .await
        .unwrap();
    pg.batch_execute(
        "CREATE ROLE reader LOGIN PASSWORD 'readerpw';
         CREATE ROLE nologin NOLOGIN PASSWORD 'nopw';
         CREATE TABLE secret (v int);",
    )
    .await
    .unwrap();

    let mut good = FlightSqlServiceClient::new(channel(&server).await);
    good.handshake("reader", "readerpw").await.unwrap();
    let denied = status(
        good.execute("SELECT * FROM secret".into(), None)
            .await
            .unwrap_err(),
    );
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert_eq!(sqlstate(&denied), "42501");

    // A wrong password and an unknown user look alike, after the same pause.
    let mut messages = Vec::new();
    for (user, password) in [("reader", "wrong"), ("nobody", "readerpw")] {
        let mut bad = FlightSqlServiceClient::new(channel(&server).await);
        let started = Instant::now();
        let e = bad.handshake(user, password).await.unwrap_err().to_string();
        assert!(started.elapsed() >= Duration::from_millis(400));
        assert!(e.contains("28P01"), "{e}");
        messages.push(e.replace(user, "USER"));
    }
    assert_eq!(messages[0], messages[1]);
    let mut nologin = FlightSqlServiceClient::new(channel(&server).await);
    let e = nologin
        .handshake("nologin", "nopw")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("not permitted to log in"), "{e}");

    // No token, or a made-up one: nothing runs.
    let mut anonymous = FlightSqlServiceClient::new(channel(&server).await);
    let e = status(
        anonymous
            .execute("SELECT 1".into(), None)
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code(), Code::Unauthenticated);
    anonymous.set_token("made-up".into());
    let e = status(
        anonymous
            .execute("SELECT 1".into(), None)
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn tls_serves_flight_sql_with_the_servers_certificate() {
    let dir = crate::security::data_dir_with_admin();
    let (ca, cert, key) = crate::security::certificates(dir.path());
    let server = crate::security::serve(
        &dir,
        &[
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--require-tls",
            "--flight-listen",
            "127.0.0.1:0",
        ],
    );
    let port = server.flight_port.unwrap();
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(&ca).unwrap()))
        .domain_name("localhost");
    let channel = Endpoint::from_shared(format!("https://127.0.0.1:{port}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut flight = FlightSqlServiceClient::new(channel);
    flight.handshake("admin", "adminpw").await.unwrap();
    assert_eq!(rows(&query(&mut flight, "SELECT 1").await), 1);
    // Plaintext gets no answer from a TLS endpoint.
    let plain = Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5))
        .connect()
        .await;
    if let Ok(plain) = plain {
        let mut plain = FlightSqlServiceClient::new(plain);
        assert!(plain.handshake("admin", "adminpw").await.is_err());
    }
}
