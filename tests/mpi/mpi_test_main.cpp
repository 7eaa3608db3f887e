// main() for the tests that run under mpirun: MPI is up for the whole run, rank 0 prints
// GoogleTest's report, the other ranks print their failures only, and every rank exits with the
// worst outcome of any rank, so mpirun's status is the job's.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>

#include "parallel/mpi_environment.h"

namespace {

class RankFailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.failed()) return;
    std::fprintf(stderr, "[rank %d] %s:%d: failure\n%s\n", rank_,
                 result.file_name() ? result.file_name() : "?", result.line_number(),
                 result.summary());
  }

 private:
  int rank_;
};

}  // namespace

int main(int argc, char** argv) {
  try {
    qwen3::MpiEnvironment mpi(&argc, &argv);
    ::testing::InitGoogleTest(&argc, argv);
    if (mpi.world_rank() != 0) {
      auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
      delete listeners.Release(listeners.default_result_printer());
      listeners.Append(new RankFailurePrinter(mpi.world_rank()));
    } else {
      std::printf("running on %d ranks\n", mpi.world_size());
    }
    int worst = RUN_ALL_TESTS();
    MPI_Allreduce(MPI_IN_PLACE, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return worst;
  } catch (const std::exception& e) {
    qwen3::MpiEnvironment::abort_job("qwen3_mpi_tests", e.what());
  }
}
