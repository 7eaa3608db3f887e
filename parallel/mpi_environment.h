#pragma once
// MPI start-up, the rank's place in the job, and the one way down for a job with a failed rank.
//
// One MpiEnvironment per process, made first in main() and destroyed last. Works without mpirun
// too (a singleton job of one rank).
#include <string>

namespace qwen3 {

class MpiEnvironment {
 public:
  // MPI_Init_thread, asking for MPI_THREAD_FUNNELED: only the main thread calls MPI (the loader's
  // prefetch thread never does). Throws when the library provides less. Sets the rank printed in
  // every qwen3::Error and makes MPI calls return error codes for QWEN3_MPI_CHECK.
  MpiEnvironment(int* argc, char*** argv);
  // MPI_Finalize, except while an exception is unwinding: then the program's catch must call
  // abort_job, which ends the job without waiting for the other ranks.
  ~MpiEnvironment();
  MpiEnvironment(const MpiEnvironment&) = delete;
  MpiEnvironment& operator=(const MpiEnvironment&) = delete;

  int world_rank() const { return world_rank_; }
  int world_size() const { return world_size_; }
  // Rank and rank count among the processes on this node (MPI_COMM_TYPE_SHARED): the local rank
  // picks the GPU.
  int local_rank() const { return local_rank_; }
  int local_size() const { return local_size_; }
  const std::string& hostname() const { return hostname_; }
  // "rank 3 of 8 (host node12, local rank 1 of 4)"
  std::string describe() const;

  // Prints "<program>: error on rank R (host H): <message>" to stderr and ends the whole job: with
  // more than one rank through MPI_Abort, so that ranks waiting in a collective for this one do
  // not hang; with one rank by finalizing and exiting. Exit status `code`. For programs (launch/,
  // tools) to call from their top-level catch. Works before MPI is initialised, too.
  [[noreturn]] static void abort_job(const std::string& program, const std::string& message,
                                     int code = 1);

 private:
  int world_rank_ = 0, world_size_ = 1, local_rank_ = 0, local_size_ = 1;
  std::string hostname_;
};

}  // namespace qwen3
