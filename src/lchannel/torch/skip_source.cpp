// SRBP's error source as a compiled autograd node (see native.py, functions.SkipSource).
//
// skip_source(y, points, feedbacks) returns a copy of y whose backward takes
// g = dloss/dy and sends it on to y unchanged and to every receiving point p the signal
// g C_p^T (paper 2, eq. 11), with C_p of shape (values per example at p, outputs per
// example).  This is functions.SkipSource without signal transforms or adaptation, with
// the same products in the same order; in C++ it costs no Python in the forward or the
// backward pass (15 and 19 us less per step on paper 1's MNIST MLP), which decides
// whether SRBP beats autograd on a net that small (docs/your-own-model.md).
#include <ATen/ATen.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/utils/pybind.h>

using torch::autograd::Node;
using torch::autograd::variable_list;

struct SkipSourceBackward : public Node {
  std::vector<at::Tensor> feedbacks;          // C_p, (n_p, N_L)
  std::vector<std::vector<int64_t>> shapes;   // each point's shape, to lay its signal out
  bool released = false;

  std::string name() const override { return "SkipSourceBackward"; }

  variable_list apply(variable_list&& grads) override {
    TORCH_CHECK(!released, "Trying to backward through SRBP's error source a second time: its feedback maps "
                "were released after the first backward. Specify retain_graph=True in the first call.");
    const at::Tensor& g = grads[0];
    variable_list out(1 + feedbacks.size());
    out[0] = g;
    if (!g.defined()) return out;
    const at::Tensor gL = g.dim() == 2 ? g : g.reshape({g.size(0), -1});  // (B, N_L)
    for (size_t i = 0; i < feedbacks.size(); ++i) {
      at::Tensor J = gL.mm(feedbacks[i].t());
      out[i + 1] = shapes[i].size() == 2 ? J : J.view(shapes[i]);
    }
    return out;
  }

  void release_variables() override {
    feedbacks.clear();
    released = true;
  }
};

at::Tensor skip_source(const at::Tensor& y, const std::vector<at::Tensor>& points,
                       const std::vector<at::Tensor>& feedbacks) {
  TORCH_CHECK(points.size() == feedbacks.size(), "skip_source: one feedback map per point");
  auto node = c10::make_intrusive<SkipSourceBackward>();
  node->feedbacks = feedbacks;
  std::vector<at::Tensor> inputs;
  inputs.reserve(1 + points.size());
  inputs.push_back(y);
  for (const auto& p : points) {
    node->shapes.emplace_back(p.sizes().vec());
    inputs.push_back(p);
  }
  node->set_next_edges(torch::autograd::collect_next_edges(inputs));
  at::Tensor out;
  {
    at::AutoDispatchBelowADInplaceOrView guard;  // the copy itself is not recorded
    out = y.clone();
  }
  torch::autograd::set_history(out, node);
  return out;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("skip_source", &skip_source, "SRBP's error source (identity; backward: g to y, g C_p^T to point p)");
}
