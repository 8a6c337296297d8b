// libFuzzer harness: every protocol message as the server receives it, over gRPC (protobuf
// binary) and in the directory transport (its JSON mapping in files), through the checks the
// server runs on it: object references (store.h: check_ref), a job's spec (bundle.h:
// meta_from_spec), CryptoTL's request and result (their references and split names) and the
// size bound an upload is held to. Refusals are fine; crashes are not.
#include <google/protobuf/util/json_util.h>

#include <cstdint>
#include <string>

#include "hetal/protocol/bundle.h"
#include "hetal/protocol/cryptotl/transfer.h"
#include "hetal/protocol/grpc/store.h"

namespace {
using namespace hetal;
using protocol::grpc_transport::ServiceError;

void refs(const v1::ObjectRef& r) {
  try {
    protocol::grpc_transport::check_ref(r);
  } catch (const ServiceError&) {
  }
}

void spec(const v1::JobSpec& s) {
  try {
    (void)protocol::detail::meta_from_spec(s, "fuzz");
  } catch (const protocol::ProtocolError&) {
  }
  for (const auto* r :
       {&s.parameters(), &s.public_key(), &s.relin_key(), &s.galois_keys(), &s.bootstrap_keys()})
    refs(*r);
  for (const auto& r : s.train_batches()) refs(r);
}

void split_names(const google::protobuf::RepeatedPtrField<v1::TransferSplit>& splits) {
  for (const auto& sp : splits) {
    try {
      protocol::cryptotl::check_split_name(sp.name());
    } catch (const protocol::ProtocolError&) {
    }
  }
}

template <class M>
bool parse(const std::uint8_t* d, std::size_t n, bool json, M& m) {
  if (!json) return m.ParseFromArray(d, static_cast<int>(n));
  return google::protobuf::util::JsonStringToMessage(
             std::string(reinterpret_cast<const char*>(d), n), &m)
      .ok();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const bool json = data[0] & 1;
  const std::uint8_t* d = data + 1;
  const std::size_t n = size - 1;
  switch ((data[0] >> 1) % 9) {
    case 0: {
      v1::WriteRequest m;
      if (parse(d, n, json, m) && m.has_object()) refs(m.object());
      break;
    }
    case 1: {
      v1::JobSpec m;
      if (parse(d, n, json, m)) spec(m);
      break;
    }
    case 2: {
      v1::SubmitRequest m;
      if (parse(d, n, json, m)) spec(m.spec());
      break;
    }
    case 3: {
      v1::Decision m;
      (void)parse(d, n, json, m);
      break;
    }
    case 4: {
      v1::InferRequest m;
      if (parse(d, n, json, m))
        for (const auto& r : m.batches()) refs(r);
      break;
    }
    case 5: {
      v1::WatchEvent m;
      (void)parse(d, n, json, m);
      break;
    }
    case 6: {
      v1::QueryWriteStatusRequest m;
      if (parse(d, n, json, m)) refs(m.object());
      break;
    }
    case 7: {  // CryptoTL: the service's Forward request, the directory's transfer.json
      v1::TransferSpec m;
      if (parse(d, n, json, m)) {
        for (const auto* r : {&m.parameters(), &m.relin_key(), &m.galois_keys()}) refs(*r);
        for (const auto& sp : m.splits()) refs(sp.inputs());
        split_names(m.splits());
      }
      break;
    }
    case 8: {  // CryptoTL: result.json as the client reads it
      v1::TransferResult m;
      if (parse(d, n, json, m)) split_names(m.splits());
      break;
    }
  }
  return 0;
}
