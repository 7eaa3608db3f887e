// The NCCL stand-in of cuda_include/nccl.h: arguments are checked at the call, as NCCL checks
// them; the collective is queued on the stream and done with MPI when the stream runs it. Every
// rank runs its streams at its own synchronisation points, and those follow the same program, so
// the collectives meet in the same order on every rank, as NCCL requires of the program too.
#include <mpi.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nccl.h>

#include "core/tensor/bf16.h"
#include "parallel/mpi_bf16.h"
#include "tests/emulator/device_memory.h"

struct ncclComm {
  int rank = 0, size = 1;
  int device = 0;
  MPI_Comm mpi = MPI_COMM_NULL;  // MPI_COMM_NULL for one rank
};

namespace {

constexpr char kIdMagic[] = "qwen3-emulated-nccl";

size_t collectives = 0;
int group_depth = 0;
// Collectives held between ncclGroupStart and ncclGroupEnd: each queues itself when called.
std::vector<std::function<void()>> held;

ncclResult_t refuse(ncclResult_t result, const std::string& why) {
  std::fprintf(stderr, "emulated NCCL: %s\n", why.c_str());
  return result;
}

size_t type_bytes(ncclDataType_t type) {
  switch (type) {
    case ncclInt32:
    case ncclFloat32:
      return 4;
    case ncclInt64:
    case ncclFloat64:
      return 8;
    case ncclBfloat16:
      return 2;
    default:
      return 0;  // not emulated
  }
}

MPI_Datatype mpi_type(ncclDataType_t type) {
  switch (type) {
    case ncclInt32:
      return MPI_INT32_T;
    case ncclInt64:
      return MPI_INT64_T;
    case ncclFloat32:
      return MPI_FLOAT;
    case ncclFloat64:
      return MPI_DOUBLE;
    default:
      return MPI_UINT16_T;  // bf16 as 16-bit words, reduced by the operations below
  }
}

MPI_Op mpi_op(ncclRedOp_t op, ncclDataType_t type) {
  // Not commutative: MPI then combines in rank order, so every run rounds the same way.
  if (type == ncclBfloat16)
    return qwen3::bf16_reduce_op(op == ncclSum   ? qwen3::ReduceOp::Sum
                                 : op == ncclMax ? qwen3::ReduceOp::Max
                                                 : qwen3::ReduceOp::Min,
                                 false);
  return op == ncclSum ? MPI_SUM : op == ncclMax ? MPI_MAX : MPI_MIN;
}

ncclResult_t check_common(const char* call, ncclComm_t comm, ncclDataType_t type, size_t count,
                          cudaStream_t stream) {
  if (comm == nullptr) return refuse(ncclInvalidArgument, fmt::format("{}: a null comm", call));
  if (type_bytes(type) == 0)
    return refuse(ncclInvalidArgument,
                  fmt::format("{}: datatype {} is not emulated", call, int(type)));
  if (count > size_t(std::numeric_limits<int>::max()))
    return refuse(ncclInvalidArgument,
                  fmt::format("{}: {} elements are over MPI's int count here", call, count));
  if (!qwen3::emulator::is_live_stream(stream))
    return refuse(ncclInvalidArgument, fmt::format("{}: the stream is not live", call));
  return ncclSuccess;
}

ncclResult_t check_op(const char* call, ncclRedOp_t op) {
  if (op == ncclSum || op == ncclMax || op == ncclMin) return ncclSuccess;
  return refuse(ncclInvalidArgument,
                fmt::format("{}: reduction {} is not emulated", call, int(op)));
}

// A buffer NCCL would read or write: `elements` of `type` of one live device allocation.
ncclResult_t check_buffer(const char* call, const char* name, const void* buffer, size_t elements,
                          ncclDataType_t type) {
  const size_t bytes = elements * type_bytes(type);
  if (bytes == 0) return ncclSuccess;
  if (buffer == nullptr || qwen3::emulator::device_bytes_from(buffer) < bytes)
    return refuse(ncclInvalidArgument,
                  fmt::format("{}: {} at {} is not {} bytes of device memory ({} left in its "
                              "allocation)",
                              call, name, buffer, bytes,
                              buffer ? qwen3::emulator::device_bytes_from(buffer) : 0));
  return ncclSuccess;
}

// Queues `work` on `stream`, or holds it for ncclGroupEnd.
ncclResult_t issue(cudaStream_t stream, std::function<void()> work) {
  auto counted = [work = std::move(work)] {
    work();
    ++collectives;
  };
  if (group_depth > 0) {
    held.push_back([stream, counted] { qwen3::emulator::enqueue(stream, counted); });
    return ncclSuccess;
  }
  qwen3::emulator::enqueue(stream, counted);
  return ncclSuccess;
}

bool overlaps(const void* a, size_t a_bytes, const void* b, size_t b_bytes) {
  const auto x = reinterpret_cast<uintptr_t>(a), y = reinterpret_cast<uintptr_t>(b);
  return a_bytes > 0 && b_bytes > 0 && x < y + b_bytes && y < x + a_bytes;
}

}  // namespace

const char* ncclGetErrorString(ncclResult_t result) {
  switch (result) {
    case ncclSuccess:
      return "no error";
    case ncclUnhandledCudaError:
      return "unhandled cuda error (run with NCCL_DEBUG=INFO for details)";
    case ncclSystemError:
      return "unhandled system error (run with NCCL_DEBUG=INFO for details)";
    case ncclInternalError:
      return "internal error - please report this issue to the NCCL developers";
    case ncclInvalidArgument:
      return "invalid argument (run with NCCL_DEBUG=WARN for details)";
    case ncclInvalidUsage:
      return "invalid usage (run with NCCL_DEBUG=WARN for details)";
    case ncclRemoteError:
      return "remote process exited or there was a network error";
    case ncclInProgress:
      return "NCCL operation in progress";
  }
  return "unknown result code";
}

ncclResult_t ncclGetUniqueId(ncclUniqueId* id) {
  if (id == nullptr) return refuse(ncclInvalidArgument, "ncclGetUniqueId: a null id");
  std::memset(id->internal, 0, sizeof(id->internal));
  std::memcpy(id->internal, kIdMagic, sizeof(kIdMagic));
  std::random_device entropy;
  for (size_t i = sizeof(kIdMagic); i < sizeof(id->internal); ++i)
    id->internal[i] = static_cast<char>(entropy());
  return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId id, int rank) {
  if (comm == nullptr) return refuse(ncclInvalidArgument, "ncclCommInitRank: a null comm");
  if (nranks < 1 || rank < 0 || rank >= nranks)
    return refuse(ncclInvalidArgument,
                  fmt::format("ncclCommInitRank: rank {} of {} ranks", rank, nranks));
  if (std::memcmp(id.internal, kIdMagic, sizeof(kIdMagic)) != 0)
    return refuse(ncclInvalidArgument,
                  "ncclCommInitRank: the id did not come from ncclGetUniqueId (was it broadcast "
                  "to every rank?)");
  auto created = std::make_unique<ncclComm>();
  created->rank = rank;
  created->size = nranks;
  cudaGetDevice(&created->device);
  if (nranks > 1) {
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (!initialised)
      return refuse(ncclInvalidUsage,
                    "ncclCommInitRank: more than one rank needs MPI, which is not initialised");
    uint32_t hash = 2166136261u;  // FNV-1a of the id: the split's colour
    for (char c : id.internal)
      hash = (hash ^ static_cast<unsigned char>(c)) * 16777619u;
    MPI_Comm_split(MPI_COMM_WORLD, static_cast<int>(hash & 0x7fffffff), rank, &created->mpi);
    int size = 0, mpi_rank = 0;
    MPI_Comm_size(created->mpi, &size);
    MPI_Comm_rank(created->mpi, &mpi_rank);
    if (size != nranks || mpi_rank != rank) {
      MPI_Comm_free(&created->mpi);
      return refuse(ncclInvalidUsage,
                    fmt::format("ncclCommInitRank: {} processes joined as rank {} of {} ranks (in "
                                "the emulator every process of the job creates the communicator)",
                                size, rank, nranks));
    }
  }
  *comm = created.release();
  return ncclSuccess;
}

ncclResult_t ncclCommInitAll(ncclComm_t* comms, int ndev, const int* devlist) {
  if (comms == nullptr || ndev != 1)
    return refuse(ncclInvalidArgument,
                  fmt::format("ncclCommInitAll: {} devices in one process are not emulated", ndev));
  if (devlist != nullptr && cudaSetDevice(devlist[0]) != cudaSuccess)
    return refuse(ncclInvalidArgument, "ncclCommInitAll: no such device");
  ncclUniqueId id;
  ncclGetUniqueId(&id);
  return ncclCommInitRank(comms, 1, id, 0);
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  if (comm == nullptr) return refuse(ncclInvalidArgument, "ncclCommDestroy: a null comm");
  cudaDeviceSynchronize();  // collectives still queued use the communicator
  if (comm->mpi != MPI_COMM_NULL) {
    int finalised = 0;
    MPI_Finalized(&finalised);
    if (!finalised) MPI_Comm_free(&comm->mpi);
  }
  delete comm;
  return ncclSuccess;
}

ncclResult_t ncclCommCount(const ncclComm_t comm, int* count) {
  if (comm == nullptr || count == nullptr) return ncclInvalidArgument;
  *count = comm->size;
  return ncclSuccess;
}

ncclResult_t ncclCommUserRank(const ncclComm_t comm, int* rank) {
  if (comm == nullptr || rank == nullptr) return ncclInvalidArgument;
  *rank = comm->rank;
  return ncclSuccess;
}

ncclResult_t ncclAllReduce(const void* sendbuff, void* recvbuff, size_t count,
                           ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                           cudaStream_t stream) {
  const char* call = "ncclAllReduce";
  for (ncclResult_t r : {check_common(call, comm, datatype, count, stream), check_op(call, op),
                         check_buffer(call, "sendbuff", sendbuff, count, datatype),
                         check_buffer(call, "recvbuff", recvbuff, count, datatype)})
    if (r != ncclSuccess) return r;
  const size_t bytes = count * type_bytes(datatype);
  if (sendbuff != recvbuff && overlaps(sendbuff, bytes, recvbuff, bytes))
    return refuse(ncclInvalidArgument, "ncclAllReduce: the buffers overlap without being equal");
  return issue(stream, [=] {
    if (comm->size == 1) {
      if (sendbuff != recvbuff) std::memcpy(recvbuff, sendbuff, bytes);
      return;
    }
    MPI_Allreduce(sendbuff == recvbuff ? MPI_IN_PLACE : sendbuff, recvbuff, int(count),
                  mpi_type(datatype), mpi_op(op, datatype), comm->mpi);
  });
}

// In place when recvbuff is this rank's piece of sendbuff, as NCCL defines it.
ncclResult_t ncclReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount,
                               ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                               cudaStream_t stream) {
  const char* call = "ncclReduceScatter";
  const size_t total = comm ? recvcount * size_t(comm->size) : 0;
  for (ncclResult_t r : {check_common(call, comm, datatype, total, stream), check_op(call, op),
                         check_buffer(call, "sendbuff", sendbuff, total, datatype),
                         check_buffer(call, "recvbuff", recvbuff, recvcount, datatype)})
    if (r != ncclSuccess) return r;
  const size_t piece = recvcount * type_bytes(datatype);
  const char* own = static_cast<const char*>(sendbuff) + piece * size_t(comm->rank);
  if (recvbuff != own && overlaps(sendbuff, piece * size_t(comm->size), recvbuff, piece))
    return refuse(ncclInvalidArgument,
                  "ncclReduceScatter: recvbuff overlaps sendbuff without being this rank's piece");
  return issue(stream, [=] {
    if (comm->size == 1) {
      if (recvbuff != sendbuff) std::memcpy(recvbuff, sendbuff, piece);
      return;
    }
    // MPI's in-place form puts the result elsewhere: reduce from a copy of the input instead.
    const char* input = static_cast<const char*>(sendbuff);
    std::vector<char> copy;
    if (recvbuff == own) {
      copy.assign(input, input + piece * size_t(comm->size));
      input = copy.data();
    }
    MPI_Reduce_scatter_block(input, recvbuff, int(recvcount), mpi_type(datatype),
                             mpi_op(op, datatype), comm->mpi);
  });
}

// In place when sendbuff is this rank's piece of recvbuff, as NCCL (and MPI) define it.
ncclResult_t ncclAllGather(const void* sendbuff, void* recvbuff, size_t sendcount,
                           ncclDataType_t datatype, ncclComm_t comm, cudaStream_t stream) {
  const char* call = "ncclAllGather";
  const size_t total = comm ? sendcount * size_t(comm->size) : 0;
  for (ncclResult_t r : {check_common(call, comm, datatype, total, stream),
                         check_buffer(call, "sendbuff", sendbuff, sendcount, datatype),
                         check_buffer(call, "recvbuff", recvbuff, total, datatype)})
    if (r != ncclSuccess) return r;
  const size_t piece = sendcount * type_bytes(datatype);
  char* own = static_cast<char*>(recvbuff) + piece * size_t(comm->rank);
  if (sendbuff != own && overlaps(sendbuff, piece, recvbuff, piece * size_t(comm->size)))
    return refuse(ncclInvalidArgument,
                  "ncclAllGather: sendbuff overlaps recvbuff without being this rank's piece");
  return issue(stream, [=] {
    if (comm->size == 1) {
      if (sendbuff != own) std::memcpy(own, sendbuff, piece);
      return;
    }
    MPI_Allgather(sendbuff == own ? MPI_IN_PLACE : sendbuff, int(sendcount), mpi_type(datatype),
                  recvbuff, int(sendcount), mpi_type(datatype), comm->mpi);
  });
}

ncclResult_t ncclBroadcast(const void* sendbuff, void* recvbuff, size_t count,
                           ncclDataType_t datatype, int root, ncclComm_t comm,
                           cudaStream_t stream) {
  const char* call = "ncclBroadcast";
  for (ncclResult_t r : {check_common(call, comm, datatype, count, stream),
                         check_buffer(call, "recvbuff", recvbuff, count, datatype)})
    if (r != ncclSuccess) return r;
  if (root < 0 || root >= comm->size)
    return refuse(ncclInvalidArgument,
                  fmt::format("{}: root {} of {} ranks", call, root, comm->size));
  if (comm->rank == root)
    if (ncclResult_t r = check_buffer(call, "sendbuff", sendbuff, count, datatype);
        r != ncclSuccess)
      return r;
  const size_t bytes = count * type_bytes(datatype);
  return issue(stream, [=] {
    if (comm->rank == root && sendbuff != recvbuff) std::memmove(recvbuff, sendbuff, bytes);
    if (comm->size > 1) MPI_Bcast(recvbuff, int(count), mpi_type(datatype), root, comm->mpi);
  });
}

// recvbuff matters on the root only (the others may pass none).
ncclResult_t ncclReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype,
                        ncclRedOp_t op, int root, ncclComm_t comm, cudaStream_t stream) {
  const char* call = "ncclReduce";
  for (ncclResult_t r : {check_common(call, comm, datatype, count, stream), check_op(call, op),
                         check_buffer(call, "sendbuff", sendbuff, count, datatype)})
    if (r != ncclSuccess) return r;
  if (root < 0 || root >= comm->size)
    return refuse(ncclInvalidArgument,
                  fmt::format("{}: root {} of {} ranks", call, root, comm->size));
  const bool is_root = comm->rank == root;
  const size_t bytes = count * type_bytes(datatype);
  if (is_root) {
    if (ncclResult_t r = check_buffer(call, "recvbuff", recvbuff, count, datatype);
        r != ncclSuccess)
      return r;
    if (sendbuff != recvbuff && overlaps(sendbuff, bytes, recvbuff, bytes))
      return refuse(ncclInvalidArgument, "ncclReduce: the buffers overlap without being equal");
  }
  return issue(stream, [=] {
    if (comm->size == 1) {
      if (sendbuff != recvbuff) std::memcpy(recvbuff, sendbuff, bytes);
      return;
    }
    const bool in_place = is_root && sendbuff == recvbuff;
    MPI_Reduce(in_place ? MPI_IN_PLACE : sendbuff, is_root ? recvbuff : nullptr, int(count),
               mpi_type(datatype), mpi_op(op, datatype), root, comm->mpi);
  });
}

ncclResult_t ncclGroupStart() {
  ++group_depth;
  return ncclSuccess;
}

ncclResult_t ncclGroupEnd() {
  if (group_depth == 0)
    return refuse(ncclInvalidUsage, "ncclGroupEnd without a matching ncclGroupStart");
  if (--group_depth > 0) return ncclSuccess;
  std::vector<std::function<void()>> issue_now;
  issue_now.swap(held);
  for (const std::function<void()>& queue_it : issue_now)
    queue_it();
  return ncclSuccess;
}

size_t qwen3::emulator::nccl::collectives_run() {
  return collectives;
}
