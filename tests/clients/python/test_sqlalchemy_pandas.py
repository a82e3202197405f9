#!/usr/bin/env python3
"""SQLAlchemy 2 (psycopg 3 and psycopg2 drivers) and pandas against the server:
reflection through inspect() (pg_catalog queries), a Core select,
pandas read_sql and DataFrame.to_sql.

Connection from the libpq environment: PGHOST, PGPORT, PGUSER, PGDATABASE.
Prints one line per passed check; exits 1 on the first failure, or with
CLIENT_TESTS_KEEP_GOING=1 runs on and reports every failure.
Tables are named after the client and dropped first, so the scripts can run
concurrently against one server.
"""

import datetime as dt
import importlib.util
import os
import sys
from decimal import Decimal

try:
    import sqlalchemy as sa
    from sqlalchemy.dialects import postgresql as pg
except ImportError:
    print('SKIPPED: sqlalchemy not installed (pip install "sqlalchemy>=2")')
    sys.exit(0)
try:
    import pandas as pd
except ImportError:
    print("SKIPPED: pandas not installed (pip install pandas)")
    sys.exit(0)
if int(sa.__version__.split(".")[0]) < 2:
    print(f'SKIPPED: sqlalchemy {sa.__version__} is older than 2 (pip install "sqlalchemy>=2")')
    sys.exit(0)

DRIVERS = [("psycopg", "psycopg", "psycopg[binary]"), ("psycopg2", "psycopg2", "psycopg2-binary")]


from harness import CheckFailed, check, fail, finish, unexpected  # noqa: E402


def url(driver):
    return sa.URL.create(
        f"postgresql+{driver}",
        username=os.environ.get("PGUSER") or None,
        host=os.environ.get("PGHOST", "127.0.0.1"),
        port=int(os.environ.get("PGPORT", "5432")),
        database=os.environ.get("PGDATABASE") or None,
    )


def names(prefix):
    return {
        "main": f"{prefix}_main",
        "child": f"{prefix}_child",
        "view": f"{prefix}_view",
        "core": f"{prefix}_core",
        "df": f"{prefix}_df",
    }


def setup(engine, t, label):
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP VIEW IF EXISTS {t['view']}")
        for key in ("child", "main", "core", "df"):
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {t[key]}")
        conn.exec_driver_sql(f"""
            CREATE TABLE {t['main']} (
                id integer NOT NULL PRIMARY KEY,
                name varchar(20) NOT NULL,
                price numeric(12,2),
                qty integer DEFAULT 0,
                status text DEFAULT 'new',
                big bigint,
                small smallint,
                ratio real,
                score double precision,
                active boolean,
                day date,
                created timestamp,
                created_tz timestamptz,
                at_time time,
                span interval,
                uid uuid,
                doc json,
                docb jsonb,
                raw bytea
            )""")
        conn.exec_driver_sql(
            f"CREATE VIEW {t['view']} AS SELECT id, name FROM {t['main']} WHERE qty > 0")
    print(f"ok - {label}: create tables and view")


def test_inspect(engine, t, label):
    insp = sa.inspect(engine)
    schemas = insp.get_schema_names()
    check(f"{label}: get_schema_names contains 'public'", "public" in schemas, True)
    tables = insp.get_table_names()
    check(f"{label}: get_table_names contains {t['main']}", t["main"] in tables, True)
    check(f"{label}: get_table_names excludes the view", t["view"] in tables, False)
    check(f"{label}: get_view_names contains {t['view']}",
          t["view"] in insp.get_view_names(), True)
    check(f"{label}: has_table", insp.has_table(t["main"]), True)
    check(f"{label}: has_table of a missing table", insp.has_table(t["main"] + "_missing"), False)

    cols = {c["name"]: c for c in insp.get_columns(t["main"])}
    check(f"{label}: get_columns names in order", [c["name"] for c in insp.get_columns(t["main"])],
          ["id", "name", "price", "qty", "status", "big", "small", "ratio", "score", "active",
           "day", "created", "created_tz", "at_time", "span", "uid", "doc", "docb", "raw"])
    expected_types = {
        "id": sa.INTEGER, "name": sa.VARCHAR, "price": sa.NUMERIC, "qty": sa.INTEGER,
        "status": sa.TEXT, "big": sa.BIGINT, "small": sa.SMALLINT, "ratio": sa.REAL,
        "score": pg.DOUBLE_PRECISION, "active": sa.BOOLEAN, "day": sa.DATE,
        "created": pg.TIMESTAMP, "created_tz": pg.TIMESTAMP, "at_time": pg.TIME,
        "span": pg.INTERVAL, "uid": pg.UUID, "doc": pg.JSON, "docb": pg.JSONB, "raw": pg.BYTEA,
    }
    got = {n: type(c["type"]).__name__ for n, c in cols.items()}
    check(f"{label}: get_columns types", got,
          {n: cls.__name__ for n, cls in expected_types.items()})
    check(f"{label}: VARCHAR(20) length", cols["name"]["type"].length, 20)
    check(f"{label}: NUMERIC(12,2) precision/scale",
          (cols["price"]["type"].precision, cols["price"]["type"].scale), (12, 2))
    check(f"{label}: timestamp timezone flags",
          (cols["created"]["type"].timezone, cols["created_tz"]["type"].timezone), (False, True))
    check(f"{label}: nullable flags",
          {n: c["nullable"] for n, c in cols.items() if n in ("id", "name", "price", "qty")},
          {"id": False, "name": False, "price": True, "qty": True})
    check(f"{label}: defaults",
          {n: cols[n]["default"] for n in ("id", "qty", "status", "price")},
          {"id": None, "qty": "0", "status": "'new'::text", "price": None})
    check(f"{label}: no autoincrement on a plain integer key",
          cols["id"].get("autoincrement"), False)

    pk = insp.get_pk_constraint(t["main"])
    check(f"{label}: get_pk_constraint constrained_columns", pk["constrained_columns"], ["id"])
    check(f"{label}: view columns",
          [c["name"] for c in insp.get_columns(t["view"])], ["id", "name"])

    md = sa.MetaData()
    table = sa.Table(t["main"], md, autoload_with=engine)
    check(f"{label}: Table(autoload_with) primary key", [c.name for c in table.primary_key], ["id"])
    check(f"{label}: Table(autoload_with) VARCHAR length", table.c.name.type.length, 20)


def test_core(engine, t, label):
    md = sa.MetaData()
    core = sa.Table(
        t["core"], md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(20), nullable=False),
        sa.Column("amount", sa.Numeric(12, 2)),
        sa.Column("day", sa.Date),
        sa.Column("flag", sa.Boolean),
    )
    md.create_all(engine)
    check(f"{label}: MetaData.create_all created the table",
          sa.inspect(engine).has_table(t["core"]), True)
    rows = [
        {"id": 1, "name": "one", "amount": Decimal("1.25"), "day": dt.date(2024, 1, 1), "flag": True},
        {"id": 2, "name": "two", "amount": None, "day": None, "flag": False},
        {"id": 3, "name": "three", "amount": Decimal("-3.00"), "day": dt.date(2024, 3, 3), "flag": None},
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(core), rows)
        conn.execute(sa.insert(core).values(id=4, name="four", amount=Decimal("4.40")))
    with engine.connect() as conn:
        got = conn.execute(
            sa.select(core.c.id, core.c.name, core.c.amount)
            .where(core.c.amount.is_not(None))
            .where(core.c.name.like("%o%"))
            .order_by(core.c.id.desc())
        ).all()
        check(f"{label}: Core select with where/like/order_by",
              [tuple(r) for r in got],
              [(4, "four", Decimal("4.40")), (1, "one", Decimal("1.25"))])
        total = conn.execute(sa.select(sa.func.count(), sa.func.sum(core.c.amount))
                             .select_from(core)).one()
        check(f"{label}: Core select count/sum", tuple(total), (4, Decimal("2.65")))
        got = conn.execute(sa.select(core).where(core.c.id == sa.bindparam("k")), {"k": 2}).one()
        check(f"{label}: Core select with bindparam", got._asdict(), rows[1])
    with engine.begin() as conn:
        conn.execute(sa.update(core).where(core.c.id == 2).values(amount=Decimal("2.00")))
        conn.execute(sa.delete(core).where(core.c.id == 3))
    with engine.connect() as conn:
        got = conn.execute(sa.select(core.c.id, core.c.amount).order_by(core.c.id)).all()
        check(f"{label}: Core update/delete", [tuple(r) for r in got],
              [(1, Decimal("1.25")), (2, Decimal("2.00")), (4, Decimal("4.40"))])
    try:
        with engine.begin() as conn:
            conn.execute(sa.insert(core).values(id=1, name="dup"))
    except sa.exc.IntegrityError as e:
        check(f"{label}: duplicate key raises IntegrityError, sqlstate",
              getattr(e.orig, "pgcode", None) or getattr(e.orig, "sqlstate", None), "23505")
    else:
        fail(f"{label}: duplicate key: expected IntegrityError, got no error")
    md.drop_all(engine)
    check(f"{label}: MetaData.drop_all dropped the table",
          sa.inspect(engine).has_table(t["core"]), False)


def test_pandas(engine, t, label):
    with engine.begin() as conn:
        conn.exec_driver_sql(f"""
            INSERT INTO {t['main']} (id, name, price, qty, active, day, created, score, big)
            VALUES (1, 'alpha', 10.50, 3, true, '2024-01-01', '2024-01-01 10:00:00', 0.5, NULL),
                   (2, 'beta', NULL, 0, false, '2024-02-02', '2024-02-02 11:30:00', NULL, 7),
                   (3, 'gamma', 2.25, 7, true, NULL, NULL, 1.25, 8)""")
    df = pd.read_sql(
        sa.text(f"SELECT id, name, price, qty, active, day, created, score, big "
                f"FROM {t['main']} ORDER BY id"), engine)
    check(f"{label}: read_sql shape", df.shape, (3, 9))
    check(f"{label}: read_sql text column has a string dtype",
          pd.api.types.is_string_dtype(df["name"]), True)
    kinds = {c: df[c].dtype.kind for c in df.columns if c != "name"}
    check(f"{label}: read_sql dtype kinds", kinds, {
        "id": "i", "price": "f",  # numeric becomes float (coerce_float=True)
        "qty": "i", "active": "b", "day": "O", "created": "M", "score": "f",
        "big": "f",  # an integer column with a NULL becomes float
    })
    check(f"{label}: read_sql values",
          (df["id"].tolist(), df["name"].tolist(), df["qty"].tolist(), df["active"].tolist()),
          ([1, 2, 3], ["alpha", "beta", "gamma"], [3, 0, 7], [True, False, True]))
    check(f"{label}: read_sql NULL -> NaN/NaT",
          (pd.isna(df["price"][1]), pd.isna(df["day"][2]), pd.isna(df["created"][2])),
          (True, True, True))
    check(f"{label}: read_sql timestamp value",
          df["created"][1], pd.Timestamp("2024-02-02 11:30:00"))
    check(f"{label}: read_sql date value", df["day"][0], dt.date(2024, 1, 1))
    df2 = pd.read_sql(sa.text(f"SELECT name FROM {t['main']} WHERE qty > :q ORDER BY id"),
                      engine, params={"q": 1})
    check(f"{label}: read_sql with a bound parameter", df2["name"].tolist(), ["alpha", "gamma"])
    df3 = pd.read_sql_table(t["view"], engine)
    check(f"{label}: read_sql_table of a view", sorted(df3["name"].tolist()), ["alpha", "gamma"])

    out = pd.DataFrame({
        "id": pd.Series([1, 2, 3], dtype="int64"),
        "label": ["x", "y", "z"],
        "value": [1.5, -2.25, 1e10],
        "flag": [True, False, True],
        "when": pd.to_datetime(["2024-01-01 00:00:00", "2024-06-30 12:34:56", "1999-12-31 23:59:59"]),
    })
    out.to_sql(t["df"], engine, index=False, if_exists="replace")
    with engine.connect() as conn:
        n = conn.exec_driver_sql(f"SELECT count(*) FROM {t['df']}").scalar()
    check(f"{label}: to_sql(if_exists='replace') row count", n, 3)
    cols = {c["name"]: type(c["type"]).__name__ for c in sa.inspect(engine).get_columns(t["df"])}
    check(f"{label}: to_sql created column types", cols, {
        "id": "BIGINT", "label": "TEXT", "value": "DOUBLE_PRECISION",
        "flag": "BOOLEAN", "when": "TIMESTAMP"})
    back = pd.read_sql(sa.text(f"SELECT * FROM {t['df']} ORDER BY id"), engine)
    assert_frames_equal(f"{label}: to_sql then read_sql equal", back, out)

    out.to_sql(t["df"], engine, index=False, if_exists="replace")
    back = pd.read_sql(sa.text(f"SELECT * FROM {t['df']} ORDER BY id"), engine)
    assert_frames_equal(f"{label}: to_sql(if_exists='replace') over an existing table", back, out)

    more = out.assign(id=out["id"] + 10)
    more.to_sql(t["df"], engine, index=False, if_exists="append")
    back = pd.read_sql(sa.text(f"SELECT * FROM {t['df']} ORDER BY id"), engine)
    assert_frames_equal(f"{label}: to_sql(if_exists='append')", back,
                        pd.concat([out, more], ignore_index=True))
    try:
        out.to_sql(t["df"], engine, index=False, if_exists="fail")
    except ValueError:
        print(f"ok - {label}: to_sql(if_exists='fail') refuses an existing table")
    else:
        fail(f"{label}: to_sql(if_exists='fail'): expected ValueError, got none")


def test_orm_generated_keys(engine, t, label):
    """ORM models whose keys the database generates: an autoincrement
    Integer key (SERIAL), an Identity() key, and keys read back by
    INSERT ... RETURNING in one flush of many objects."""
    from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

    class Base(DeclarativeBase):
        pass

    class Author(Base):
        __tablename__ = f"{t['core']}_author"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(sa.String(40))

    class Book(Base):
        __tablename__ = f"{t['core']}_book"
        id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(always=True), primary_key=True)
        title: Mapped[str] = mapped_column(sa.String(40))

    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    cols = {c["name"]: c for c in sa.inspect(engine).get_columns(Author.__tablename__)}
    check(f"{label}: reflected SERIAL key is autoincrement",
          (cols["id"]["autoincrement"], cols["id"]["default"]),
          (True, f"nextval('{Author.__tablename__}_id_seq'::regclass)"))
    cols = {c["name"]: c for c in sa.inspect(engine).get_columns(Book.__tablename__)}
    check(f"{label}: reflected identity column",
          bool(cols["id"].get("identity")) and cols["id"]["identity"]["always"], True)
    with Session(engine) as session:
        authors = [Author(name=f"author {i}") for i in range(5)]
        session.add_all(authors)
        session.add(Book(title="first"))
        session.commit()
        check(f"{label}: ORM flush fills generated keys",
              [a.id for a in authors], [1, 2, 3, 4, 5])
        book = session.scalars(sa.select(Book)).one()
        check(f"{label}: identity key", book.id, 1)
        session.add(Author(name="later"))
        session.commit()
        later = session.scalars(sa.select(Author).where(Author.name == "later")).one()
        check(f"{label}: the next key continues the sequence", later.id, 6)
        session.delete(later)
        session.commit()
    with engine.begin() as conn:
        seq = conn.exec_driver_sql(
            f"SELECT pg_get_serial_sequence('{Author.__tablename__}', 'id')").scalar()
        check(f"{label}: pg_get_serial_sequence", seq, f"public.{Author.__tablename__}_id_seq")
        nxt = conn.execute(sa.select(sa.func.nextval(seq))).scalar()
        check(f"{label}: nextval after a deleted row", nxt, 7)
    Base.metadata.drop_all(engine)
    check(f"{label}: drop_all drops the SERIAL sequence too",
          [n for n in sa.inspect(engine).get_sequence_names() if n.startswith(t["core"])], [])


def test_arrays(engine, t, label):
    """An ORM model with ARRAY columns: lists in and out, contains, any
    and overlap, and the columns reflected as ARRAY with their default."""
    from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

    class Base(DeclarativeBase):
        pass

    class Post(Base):
        __tablename__ = f"{t['core']}_posts"
        id: Mapped[int] = mapped_column(primary_key=True)
        tags = mapped_column(pg.ARRAY(sa.Text), nullable=False, server_default="{}")
        scores = mapped_column(pg.ARRAY(sa.Integer))

    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all([Post(id=1, tags=["a", "b c"], scores=[1, None]), Post(id=2)])
        session.commit()
        rows = [(p.id, p.tags, p.scores) for p in session.scalars(sa.select(Post).order_by(Post.id))]
        check(f"{label}: ARRAY columns round trip", rows, [(1, ["a", "b c"], [1, None]), (2, [], None)])
        ids = lambda cond: session.scalars(sa.select(Post.id).where(cond).order_by(Post.id)).all()
        check(f"{label}: ARRAY contains", ids(Post.tags.contains(["a"])), [1])
        check(f"{label}: ARRAY any", ids(sa.literal("b c") == sa.any_(Post.tags)), [1])
        check(f"{label}: ARRAY overlap", ids(Post.tags.overlap(["z", "a"])), [1])
    cols = {c["name"]: c for c in sa.inspect(engine).get_columns(Post.__tablename__)}
    check(f"{label}: reflected ARRAY types and default",
          (repr(cols["tags"]["type"]), cols["tags"]["default"], repr(cols["scores"]["type"])),
          ("ARRAY(TEXT())", "'{}'::text[]", "ARRAY(INTEGER())"))
    Base.metadata.drop_all(engine)


def test_indexes(engine, t, label):
    """Indexes as models and pandas declare them: index=True columns and a
    unique Index created by create_all, reflected by the inspector, the
    unique one enforced; pandas to_sql(index=True) makes its index."""
    from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

    class Base(DeclarativeBase):
        pass

    class Account(Base):
        __tablename__ = f"{t['core']}_account"
        id: Mapped[int] = mapped_column(primary_key=True)
        email: Mapped[str] = mapped_column(sa.String(80))
        region: Mapped[str] = mapped_column(sa.String(10), index=True)
        __table_args__ = (sa.Index(f"ux_{t['core']}_account_email", "email", unique=True),)

    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    indexes = sorted((i["name"], i["column_names"], i["unique"])
                     for i in sa.inspect(engine).get_indexes(Account.__tablename__))
    check(f"{label}: create_all made the model's indexes", indexes, [
        (f"ix_{Account.__tablename__}_region", ["region"], False),
        (f"ux_{t['core']}_account_email", ["email"], True),
    ])
    with Session(engine) as session:
        session.add_all([Account(email="a@x", region="eu"), Account(email="b@x", region="eu")])
        session.commit()
        session.add(Account(email="a@x", region="us"))
        try:
            session.commit()
        except sa.exc.IntegrityError as e:
            session.rollback()
            check(f"{label}: a unique index refuses a repeated key",
                  getattr(e.orig, "sqlstate", None) or e.orig.pgcode, "23505")
        else:
            fail(f"{label}: a unique index refuses a repeated key: no error")
        n = session.scalar(sa.select(sa.func.count()).select_from(Account))
        check(f"{label}: rows after the refused insert", n, 2)
    Base.metadata.drop_all(engine)

    frame = pd.DataFrame({"value": [1.5, 2.5, 3.5]}, index=pd.Index([10, 20, 30], name="key"))
    frame.to_sql(t["df"], engine, index=True, if_exists="replace")
    indexes = [(i["name"], i["column_names"]) for i in sa.inspect(engine).get_indexes(t["df"])]
    check(f"{label}: to_sql(index=True) makes its index", indexes,
          [(f"ix_{t['df']}_key", ["key"])])
    back = pd.read_sql(sa.text(f"SELECT * FROM {t['df']} ORDER BY key"), engine, index_col="key")
    assert_frames_equal(f"{label}: to_sql(index=True) then read_sql", back, frame)


def test_relationships(engine, t, label):
    """A one-to-many relationship over a foreign key with ON DELETE
    CASCADE: create_all makes it, the inspector reflects it, the ORM
    inserts through it, an orphan is refused (23503) and deleting the
    parent in SQL takes its children."""
    from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

    class Base(DeclarativeBase):
        pass

    class Team(Base):
        __tablename__ = f"{t['core']}_team"
        __table_args__ = {"comment": "teams in the league"}
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(sa.String(40), comment="as printed on shirts")
        players: Mapped[list["Player"]] = relationship(
            back_populates="team", cascade="all, delete-orphan", passive_deletes=True)

    class Player(Base):
        __tablename__ = f"{t['core']}_player"
        id: Mapped[int] = mapped_column(primary_key=True)
        team_id: Mapped[int] = mapped_column(
            sa.ForeignKey(f"{Team.__tablename__}.id", ondelete="CASCADE"), index=True)
        name: Mapped[str] = mapped_column(sa.String(40))
        team: Mapped[Team] = relationship(back_populates="players")

    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    inspector = sa.inspect(engine)
    check(f"{label}: reflected table comment (COMMENT ON TABLE)",
          inspector.get_table_comment(Team.__tablename__)["text"], "teams in the league")
    check(f"{label}: reflected column comment (COMMENT ON COLUMN)",
          {c["name"]: c.get("comment") for c in inspector.get_columns(Team.__tablename__)}["name"],
          "as printed on shirts")
    fks = inspector.get_foreign_keys(Player.__tablename__)
    check(f"{label}: reflected foreign key",
          [(fk["constrained_columns"], fk["referred_table"], fk["referred_columns"],
            fk["options"].get("ondelete")) for fk in fks],
          [(["team_id"], Team.__tablename__, ["id"], "CASCADE")])
    with Session(engine) as session:
        red = Team(name="red", players=[Player(name="ann"), Player(name="bob")])
        blue = Team(name="blue", players=[Player(name="cy")])
        session.add_all([red, blue])
        session.commit()
        check(f"{label}: children inserted through the relationship",
              sorted(p.name for p in session.scalars(sa.select(Player))), ["ann", "bob", "cy"])
        session.add(Player(name="ghost", team_id=999))
        try:
            session.commit()
        except sa.exc.IntegrityError as e:
            session.rollback()
            check(f"{label}: an orphan is refused",
                  getattr(e.orig, "sqlstate", None) or e.orig.pgcode, "23503")
        else:
            fail(f"{label}: an orphan is refused: no error")
        session.delete(session.get(Team, red.id))
        session.commit()
        check(f"{label}: deleting a parent through the ORM takes its children",
              [p.name for p in session.scalars(sa.select(Player))], ["cy"])
    with engine.begin() as conn:
        conn.execute(sa.delete(Team).where(Team.name == "blue"))
        n = conn.execute(sa.select(sa.func.count()).select_from(Player)).scalar()
        check(f"{label}: ON DELETE CASCADE in the database", n, 0)
    Base.metadata.drop_all(engine)
    check(f"{label}: drop_all drops both tables",
          [n for n in sa.inspect(engine).get_table_names() if n.startswith(f"{t['core']}_")
           and n.endswith(("_team", "_player"))], [])


def test_alembic_migration(engine, t, label):
    """An Alembic migration as `alembic upgrade` runs it on PostgreSQL: one
    transaction that creates tables, an index and a unique index, adds a
    column and a foreign key; then a downgrade that drops them."""
    if importlib.util.find_spec("alembic") is None:
        print(f"SKIPPED: {label}: alembic not installed (pip install alembic)")
        return
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    shop, item = f"{t['core']}_shop", f"{t['core']}_item"
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {item}")
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {shop}")
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"transactional_ddl": True})
        op = Operations(context)
        with context.begin_transaction():
            op.create_table(shop, sa.Column("id", sa.Integer, primary_key=True),
                            sa.Column("name", sa.String(50), nullable=False))
            op.create_index(f"ix_{shop}_name", shop, ["name"], unique=True)
            op.create_table(item, sa.Column("id", sa.Integer, primary_key=True),
                            sa.Column("label", sa.Text))
            op.add_column(item, sa.Column("shop_id", sa.Integer, nullable=True))
            op.create_foreign_key(f"fk_{item}_shop", item, shop, ["shop_id"], ["id"],
                                  ondelete="SET NULL")
            op.create_index(f"ix_{item}_shop_id", item, ["shop_id"])
        conn.commit()
    inspector = sa.inspect(engine)
    check(f"{label}: alembic upgrade: indexes",
          sorted((i["name"], i["unique"]) for i in inspector.get_indexes(shop) + inspector.get_indexes(item)),
          sorted([(f"ix_{shop}_name", True), (f"ix_{item}_shop_id", False)]))
    check(f"{label}: alembic upgrade: foreign key",
          [(fk["name"], fk["referred_table"]) for fk in inspector.get_foreign_keys(item)],
          [(f"fk_{item}_shop", shop)])
    with engine.begin() as conn:
        conn.exec_driver_sql(f"INSERT INTO {shop} VALUES (1, 'north')")
        conn.exec_driver_sql(f"INSERT INTO {item} VALUES (1, 'cup', 1)")
        conn.exec_driver_sql(f"DELETE FROM {shop} WHERE id = 1")
        shop_id = conn.exec_driver_sql(f"SELECT shop_id FROM {item}").scalar()
        check(f"{label}: ON DELETE SET NULL after the migration", shop_id, None)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"transactional_ddl": True})
        op = Operations(context)
        with context.begin_transaction():
            op.drop_constraint(f"fk_{item}_shop", item, type_="foreignkey")
            op.drop_index(f"ix_{item}_shop_id", table_name=item)
            op.drop_column(item, "shop_id")
            op.drop_table(item)
            op.drop_index(f"ix_{shop}_name", table_name=shop)
            op.drop_table(shop)
        conn.commit()
    left = [n for n in sa.inspect(engine).get_table_names() if n in (shop, item)]
    check(f"{label}: alembic downgrade", left, [])


def test_streamed_chunks(engine, t, label):
    """pandas read_sql(chunksize=) over stream_results: a server-side
    cursor hands the rows over in chunks."""
    big = f"{t['core']}_big"
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {big}")
        conn.exec_driver_sql(
            f"CREATE TABLE {big} AS SELECT g AS id, g / 1000 AS bucket FROM generate_series(1, 100000) g")
    with engine.connect() as conn:
        streamed = conn.execution_options(stream_results=True, max_row_buffer=10000)
        sizes = [len(chunk) for chunk in pd.read_sql(
            sa.text(f"SELECT id, bucket FROM {big} ORDER BY id"), streamed, chunksize=30000)]
        check(f"{label}: read_sql(chunksize=) with stream_results", sizes, [30000, 30000, 30000, 10000])
        total = 0
        for chunk in pd.read_sql(sa.text(f"SELECT id FROM {big}"), streamed, chunksize=40000):
            total += int(chunk["id"].sum())
        check(f"{label}: every row once", total, 100000 * 100001 // 2)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE {big}")


def assert_frames_equal(name, got, expected):
    # pandas may pick a different datetime unit (ns/us) and string dtype
    # flavour depending on version; compare values and dtype kinds.
    got = got.copy()
    expected = expected.copy()
    for df in (got, expected):
        for c in df.columns:
            if df[c].dtype.kind == "M":
                df[c] = df[c].astype("datetime64[ns]")
            elif pd.api.types.is_string_dtype(df[c]):
                df[c] = df[c].astype(object)
    try:
        pd.testing.assert_frame_equal(got, expected, check_dtype=True)
    except AssertionError as e:
        fail(f"{name}: frames differ:\n{e}\nexpected:\n{expected}\ngot:\n{got}")
    print(f"ok - {name}")


def main():
    drivers = [d for d in DRIVERS if importlib.util.find_spec(d[1]) is not None]
    for d in DRIVERS:
        if d not in drivers:
            print(f"SKIPPED: driver {d[0]}: {d[1]} not installed (pip install {d[2]})")
    if not drivers:
        print("SKIPPED: psycopg/psycopg2 not installed (pip install \"psycopg[binary]\" psycopg2-binary)")
        sys.exit(0)
    for driver, _, _ in drivers:
        label = driver
        prefix = f"sqlalchemy_{driver}"
        t = names(prefix)
        engine = sa.create_engine(url(driver))
        try:
            with engine.connect() as conn:
                version = conn.exec_driver_sql("SELECT version()").scalar()
            print(f"ok - {label}: connect ({version.split(',')[0]})")
        except Exception as e:
            unexpected(f"{label}: connect", e)
            continue
        for test in (setup, test_inspect, test_core, test_orm_generated_keys, test_arrays,
                     test_indexes,
                     test_relationships, test_alembic_migration, test_streamed_chunks,
                     test_pandas):
            try:
                test(engine, t, label)
            except Exception as e:
                unexpected(f"{label}: {test.__name__}", e)
        engine.dispose()
    finish("sqlalchemy_pandas")


if __name__ == "__main__":
    main()
