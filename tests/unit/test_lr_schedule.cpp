// Learning-rate schedules at the points where their formulas are easy to state by hand, their
// shape in between, and the errors for impossible schedules.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "core/util/error.h"
#include "trainer/lr_schedule.h"

namespace {

using namespace qwen3;

LrSchedule make(ScheduleKind kind) {
  LrSchedule s;
  s.kind = kind;
  s.lr = 1.0;
  s.min_lr = 0.1;
  s.warmup_steps = 10;
  s.total_steps = 110;
  s.decay_steps = 20;
  return s;
}

TEST(LrSchedule, WarmupIsLinearFromOneStepIn) {
  for (ScheduleKind kind :
       {ScheduleKind::Constant, ScheduleKind::Cosine, ScheduleKind::WarmupStableDecay}) {
    const LrSchedule s = make(kind);
    EXPECT_DOUBLE_EQ(s.at(0), 0.1);
    EXPECT_DOUBLE_EQ(s.at(4), 0.5);
    EXPECT_DOUBLE_EQ(s.at(9), 1.0);
  }
}

TEST(LrSchedule, CosineFallsFromPeakToMinimum) {
  const LrSchedule s = make(ScheduleKind::Cosine);
  EXPECT_DOUBLE_EQ(s.at(10), 1.0);
  EXPECT_NEAR(s.at(60), 0.55, 1e-12);                                        // halfway: the mean
  EXPECT_NEAR(s.at(35), 0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI / 4)), 1e-12);  // a quarter in
  EXPECT_NEAR(s.at(110), 0.1, 1e-12);
  EXPECT_NEAR(s.at(500), 0.1, 1e-12);  // held past the end
  for (int64_t t = 10; t < 120; ++t)
    EXPECT_LE(s.at(t + 1), s.at(t)) << "step " << t;
}

TEST(LrSchedule, WarmupStableDecayHoldsThenDecays) {
  LrSchedule s = make(ScheduleKind::WarmupStableDecay);
  EXPECT_DOUBLE_EQ(s.at(10), 1.0);
  EXPECT_DOUBLE_EQ(s.at(90), 1.0);  // decay starts at total − decay_steps = 90
  s.decay_shape = DecayShape::Linear;
  EXPECT_NEAR(s.at(100), 0.55, 1e-12);
  s.decay_shape = DecayShape::OneMinusSqrt;
  EXPECT_NEAR(s.at(100), 0.1 + 0.9 * (1 - std::sqrt(0.5)), 1e-12);
  EXPECT_NEAR(s.at(110), 0.1, 1e-12);
  for (int64_t t = 10; t < 120; ++t)
    EXPECT_LE(s.at(t + 1), s.at(t)) << "step " << t;
}

TEST(LrSchedule, ConstantStaysAtPeak) {
  const LrSchedule s = make(ScheduleKind::Constant);
  EXPECT_DOUBLE_EQ(s.at(10), 1.0);
  EXPECT_DOUBLE_EQ(s.at(1000), 1.0);
}

TEST(LrSchedule, ImpossibleSchedulesAreNamed) {
  auto message = [](LrSchedule s) {
    try {
      s.validate("stages.1.optimizer");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  LrSchedule s = make(ScheduleKind::Cosine);
  EXPECT_EQ(message(s), "accepted");
  s.min_lr = 2.0;
  EXPECT_NE(message(s).find("stages.1.optimizer: min_lr must lie in [0, lr = 1]"),
            std::string::npos);
  s = make(ScheduleKind::Cosine);
  s.warmup_steps = 200;
  EXPECT_NE(message(s).find("warmup_steps 200 must lie in [0, total steps 110]"),
            std::string::npos);
  s = make(ScheduleKind::WarmupStableDecay);
  s.decay_steps = 101;
  EXPECT_NE(message(s).find("decay_steps 101 must lie in [1, total steps − warmup = 100]"),
            std::string::npos);
  EXPECT_THROW(parse_schedule_kind("cosin"), Error);
  EXPECT_EQ(parse_schedule_kind("wsd"), ScheduleKind::WarmupStableDecay);
  EXPECT_EQ(parse_decay_shape("1-sqrt"), DecayShape::OneMinusSqrt);
}

}  // namespace
