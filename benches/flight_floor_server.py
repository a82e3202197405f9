"""A Flight server that does no work: it holds lineitem in memory, as the
plain Arrow types QuiverDB sends, and answers any statement with it
(pyarrow's C++ Flight server, which hands the buffers to gRPC without
copying them). `flight_bench.py` fetches from it with the same ADBC client
to measure what the client alone costs on this machine: the floor under
any Flight SQL server's fetch here.

    python3 benches/flight_floor_server.py LINEITEM_PARQUET PORT
"""

import sys

import pyarrow as pa
import pyarrow.flight as flight
import pyarrow.parquet as pq


def main():
    table = pq.read_table(sys.argv[1])
    # Plain strings, as QuiverDB's results carry them (not views).
    table = table.cast(pa.schema([
        pa.field(f.name, pa.string() if f.type == pa.string_view() else f.type)
        for f in table.schema
    ])).combine_chunks()
    batches = table.to_batches(max_chunksize=16384)

    class Server(flight.FlightServerBase):
        def get_flight_info(self, context, descriptor):
            # The ADBC driver also asks for SqlInfo at connect; it does
            # without when the server has none.
            if b"CommandStatementQuery" not in (descriptor.command or b""):
                raise flight.FlightUnimplementedError("only statements")
            return flight.FlightInfo(table.schema, descriptor,
                                     [flight.FlightEndpoint(b"lineitem", [])],
                                     table.num_rows, -1)

        def do_get(self, context, ticket):
            return flight.GeneratorStream(table.schema, iter(batches))

    server = Server(f"grpc://127.0.0.1:{sys.argv[2]}")
    print("ready", flush=True)
    server.serve()


if __name__ == "__main__":
    main()
