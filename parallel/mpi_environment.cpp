#include "parallel/mpi_environment.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>

#include "parallel/mpi_check.h"

namespace qwen3 {

namespace {

// What abort_job names, set once MPI is up. Plain globals: abort_job may run from any catch.
int g_abort_rank = -1, g_abort_size = 1;
char g_abort_host[256] = "";

const char* thread_level_name(int level) {
  switch (level) {
    case MPI_THREAD_SINGLE:
      return "MPI_THREAD_SINGLE";
    case MPI_THREAD_FUNNELED:
      return "MPI_THREAD_FUNNELED";
    case MPI_THREAD_SERIALIZED:
      return "MPI_THREAD_SERIALIZED";
    case MPI_THREAD_MULTIPLE:
      return "MPI_THREAD_MULTIPLE";
  }
  return "an unknown thread level";
}

}  // namespace

std::string mpi_error_string(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) return "unknown MPI error";
  return std::string(text, static_cast<size_t>(length));
}

MpiEnvironment::MpiEnvironment(int* argc, char*** argv) {
  char host[256] = "";
  gethostname(host, sizeof(host) - 1);
  hostname_ = host;
  std::snprintf(g_abort_host, sizeof(g_abort_host), "%s", host);

  int provided = MPI_THREAD_SINGLE;
  QWEN3_MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
  // From here on MPI errors come back as codes instead of killing the job silently.
  QWEN3_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  QWEN3_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &world_rank_));
  QWEN3_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &world_size_));
  g_abort_rank = world_rank_;
  g_abort_size = world_size_;
  set_process_rank(world_rank_);

  MPI_Comm node = MPI_COMM_NULL;
  QWEN3_MPI_CHECK(
      MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world_rank_, MPI_INFO_NULL, &node));
  QWEN3_MPI_CHECK(MPI_Comm_rank(node, &local_rank_));
  QWEN3_MPI_CHECK(MPI_Comm_size(node, &local_size_));
  QWEN3_MPI_CHECK(MPI_Comm_free(&node));

  QWEN3_CHECK(provided >= MPI_THREAD_FUNNELED,
              "the MPI library provides only {}; qwen3 needs MPI_THREAD_FUNNELED (the main thread "
              "calls MPI while the loader's thread reads data). Use an MPI built with thread "
              "support.",
              thread_level_name(provided));
}

MpiEnvironment::~MpiEnvironment() {
  // While an exception unwinds towards the program's catch, MPI_Finalize would wait for ranks
  // that are themselves waiting for this one: leave MPI up for abort_job to end the job.
  if (std::uncaught_exceptions() > 0) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

std::string MpiEnvironment::describe() const {
  return fmt::format("rank {} of {} (host {}, local rank {} of {})", world_rank_, world_size_,
                     hostname_, local_rank_, local_size_);
}

void MpiEnvironment::abort_job(const std::string& program, const std::string& message, int code) {
  if (g_abort_host[0] == '\0') gethostname(g_abort_host, sizeof(g_abort_host) - 1);
  if (g_abort_rank >= 0)
    std::fprintf(stderr, "%s: error on rank %d of %d (host %s): %s\n", program.c_str(),
                 g_abort_rank, g_abort_size, g_abort_host, message.c_str());
  else
    std::fprintf(stderr, "%s: error (host %s): %s\n", program.c_str(), g_abort_host,
                 message.c_str());
  std::fflush(stderr);
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) {
    // With peers, only MPI_Abort is sure to end them: they may be blocked in a collective
    // waiting for this rank.
    if (g_abort_size > 1) MPI_Abort(MPI_COMM_WORLD, code);
    MPI_Finalize();
  }
  std::exit(code);
}

}  // namespace qwen3
