"""gRPC server and client with grpcio (gRPC's C core and its own HTTP/2),
without generated code: messages are raw bytes.
  python3 grpcio.py serve PORT      listens on 127.0.0.1:PORT (h2c)
  python3 grpcio.py call PORT       20 calls that succeed, 7 NOT_FOUND,
                                    4 past their 150 ms deadline, all at
                                    once on one channel; prints
                                    {"STATUS_NAME": count, ...}"""
import json
import sys
import time
from concurrent import futures

import grpc


def same(b):
    return b


def get(request, context):
    if request == b"missing":
        context.abort(grpc.StatusCode.NOT_FOUND, "no such item")
    if request.startswith(b"sleep:"):
        time.sleep(int(request[6:]) / 1000)
    return request


def serve(port):
    server = grpc.server(futures.ThreadPoolExecutor(8))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "sonde.test.Shop",
        {"Get": grpc.unary_unary_rpc_method_handler(get, same, same)}),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


def call(port):
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        method = channel.unary_unary("/sonde.test.Shop/Get")
        calls = [method.future(p, timeout=10)
                 for p in [b"hello"] * 20 + [b"missing"] * 7]
        calls += [method.future(b"sleep:500", timeout=0.15)
                  for _ in range(4)]
        codes = {}
        for c in calls:
            try:
                c.result()
                name = "OK"
            except grpc.RpcError as e:
                name = e.code().name
            codes[name] = codes.get(name, 0) + 1
    print(json.dumps(codes))


if __name__ == "__main__":
    (serve if sys.argv[1] == "serve" else call)(sys.argv[2])
