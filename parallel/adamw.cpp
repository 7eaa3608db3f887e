#include "parallel/adamw.h"

#include <algorithm>

#include "core/util/error.h"

namespace qwen3 {

AdamW::AdamW(Backend& backend, const ParamLayout& layout, int64_t begin, int64_t end,
             const AdamWHyperparameters& hyper)
    : backend_(backend), hyper_(hyper), elements_(end - begin) {
  QWEN3_CHECK(hyper.beta1 >= 0 && hyper.beta1 < 1, "beta1 must lie in [0, 1), got {}", hyper.beta1);
  QWEN3_CHECK(hyper.beta2 >= 0 && hyper.beta2 < 1, "beta2 must lie in [0, 1), got {}", hyper.beta2);
  QWEN3_CHECK(hyper.eps > 0, "eps must be positive, got {}", hyper.eps);
  QWEN3_CHECK(hyper.weight_decay >= 0, "weight_decay must be non-negative, got {}",
              hyper.weight_decay);
  QWEN3_CHECK(begin >= 0 && begin <= end, "AdamW over an empty or reversed range [{}, {})", begin,
              end);
  validate_decay_rule(hyper.decay, layout);
  for (const ParamEntry& e : layout.entries()) {
    const int64_t lo = std::max(begin, e.offset), hi = std::min(end, e.offset + e.numel());
    if (lo < hi) ranges_.push_back({lo - begin, hi - lo, decays(hyper.decay, e)});
  }
  state_ = backend.allocate(3 * static_cast<size_t>(elements_) * sizeof(float));
  backend.fill_zero(state_->view(DType::F32, {3 * elements_}));
}

TensorView AdamW::state_view(int which) const {
  return state_->view(DType::F32, {elements_},
                      static_cast<size_t>(which * elements_) * sizeof(float));
}

// The names the optimizer-state files have always used for these datasets.
std::vector<OptimizerStateTensor> AdamW::state() const {
  return {{"master", master()}, {"exp_avg", exp_avg()}, {"exp_avg_sq", exp_avg_sq()}};
}

void AdamW::load_master_from_params(const TensorView& params) {
  backend_.copy(params, master());
}

void AdamW::step(const TensorView& grads, double lr, double grad_scale, const TensorView& params) {
  steps_ += 1;
  AdamWHyper h;
  h.lr = lr;
  h.beta1 = hyper_.beta1;
  h.beta2 = hyper_.beta2;
  h.eps = hyper_.eps;
  h.grad_scale = grad_scale;
  h.step = steps_;
  const TensorView master_all = master(), m_all = exp_avg(), v_all = exp_avg_sq();
  for (const DecayRange& r : ranges_) {
    h.weight_decay = r.decay ? hyper_.weight_decay : 0.0;
    backend_.adamw_update(master_all.rows(r.offset, r.length), grads.rows(r.offset, r.length),
                          m_all.rows(r.offset, r.length), v_all.rows(r.offset, r.length), h);
  }
  backend_.copy(master_all, params);
}

}  // namespace qwen3
