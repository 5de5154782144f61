// The converter's autograd nodes, compiled (loaded by native.py).  Each is the Python
// autograd function of functions.py without signal transforms or adaptation, with the
// same products in the same order, so the gradients agree bit for bit
// (tests/test_torch_native.py); in C++ they cost no Python in the forward or the backward
// pass, which on a net as small as paper 1's MNIST MLP is as much as the arithmetic that
// SRBP saves or that RBP's random feedback costs (docs/your-own-model.md).
//
// skip_source(y, points, feedbacks)       SRBP's error source, functions.SkipSource:
//     a copy of y; backward: g to y, and g C_p^T (paper 2, eq. 11) to every receiving
//     point p, C_p of shape (values per example at p, outputs per example).
// feedback_linear(x, W, b, B)             RBP's linear layer, functions.FeedbackLinearFn:
//     x W^T + b; backward: dx = g B (paper 1, eq. 6-8), dW = g^T x, db = sum g.
// feedback_conv(x, W, b, B, stride, padding, dilation, groups)
//     RBP's convolution, functions.FeedbackConvFn: backward: dx is the transposed
//     convolution with the kernel B, dW and db as autograd's.
#include <ATen/ATen.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/autograd/saved_variable.h>
#include <torch/csrc/utils/pybind.h>

using torch::autograd::Node;
using torch::autograd::SavedVariable;
using torch::autograd::variable_list;

namespace {

constexpr const char* kSecondBackward =
    " was released after the first backward pass. Specify retain_graph=True in the first call.";

struct SkipSourceBackward : public Node {
  std::vector<at::Tensor> feedbacks;          // C_p, (n_p, N_L)
  std::vector<std::vector<int64_t>> shapes;   // each point's shape, to lay its signal out
  bool released = false;

  std::string name() const override { return "SkipSourceBackward"; }

  variable_list apply(variable_list&& grads) override {
    TORCH_CHECK(!released, "Trying to backward through SRBP's error source a second time: its feedback",
                kSecondBackward);
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

// What RBP's linear and conv nodes share: the saved input and the feedback B.
struct FeedbackNode : public Node {
  SavedVariable x_;
  at::Tensor B;
  bool released = false;

  // (dx, dW, db) into `out`, from the output gradient g and the saved input x; only the
  // entries task_should_compute_output asks for.
  virtual void gradients(const at::Tensor& g, const at::Tensor& x, variable_list& out) = 0;

  variable_list apply(variable_list&& grads) override {
    TORCH_CHECK(!released, "Trying to backward through an RBP layer a second time: its saved input",
                kSecondBackward);
    const at::Tensor x = x_.unpack();  // raises if x was modified in place after the forward pass
    variable_list out(3);
    if (grads[0].defined()) gradients(grads[0], x, out);
    return out;
  }

  void release_variables() override {
    x_.reset_data();
    B.reset();
    released = true;
  }
};

struct FeedbackLinearBackward : public FeedbackNode {
  std::string name() const override { return "FeedbackLinearBackward"; }

  void gradients(const at::Tensor& g, const at::Tensor& x, variable_list& out) override {
    if (task_should_compute_output(0)) out[0] = g.matmul(B);
    const at::Tensor g2 = g.reshape({-1, g.size(-1)});  // every leading axis is a batch axis
    if (task_should_compute_output(1)) out[1] = g2.t().mm(x.reshape({-1, x.size(-1)}));
    if (task_should_compute_output(2)) out[2] = g2.sum(0);
  }
};

struct FeedbackConvBackward : public FeedbackNode {
  std::vector<int64_t> stride, padding, dilation;
  int64_t groups = 1;
  std::optional<std::vector<int64_t>> bias_sizes;

  std::string name() const override { return "FeedbackConvBackward"; }

  void gradients(const at::Tensor& g, const at::Tensor& x, variable_list& out) override {
    std::array<bool, 3> mask = {task_should_compute_output(0), task_should_compute_output(1),
                                task_should_compute_output(2)};
    std::vector<int64_t> output_padding(stride.size(), 0);
    at::OptionalIntArrayRef sizes = bias_sizes ? at::OptionalIntArrayRef(*bias_sizes) : std::nullopt;
    auto r = at::convolution_backward(g, x, B, sizes, stride, padding, dilation, false, output_padding, groups, mask);
    out[0] = std::get<0>(r);
    out[1] = std::get<1>(r);
    out[2] = std::get<2>(r);
  }
};

// Give `out` the history `node`, whose inputs are `inputs`; `compute` runs below autograd.
template <typename F>
at::Tensor record(const c10::intrusive_ptr<Node>& node, const std::vector<at::Tensor>& inputs, F compute) {
  node->set_next_edges(torch::autograd::collect_next_edges(inputs));
  at::Tensor out;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    out = compute();
  }
  torch::autograd::set_history(out, node);
  return out;
}

at::Tensor skip_source(const at::Tensor& y, const std::vector<at::Tensor>& points,
                       const std::vector<at::Tensor>& feedbacks) {
  TORCH_CHECK(points.size() == feedbacks.size(), "skip_source: one feedback map per point");
  auto node = c10::make_intrusive<SkipSourceBackward>();
  node->feedbacks = feedbacks;
  std::vector<at::Tensor> inputs{y};
  for (const auto& p : points) {
    node->shapes.emplace_back(p.sizes().vec());
    inputs.push_back(p);
  }
  return record(node, inputs, [&] { return y.clone(); });
}

at::Tensor feedback_linear(const at::Tensor& x, const at::Tensor& W, const std::optional<at::Tensor>& b,
                           const at::Tensor& B) {
  auto node = c10::make_intrusive<FeedbackLinearBackward>();
  const at::Tensor bias = b.value_or(at::Tensor());
  at::Tensor out = record(node, {x, W, bias}, [&] { return at::linear(x, W, bias); });
  node->x_ = SavedVariable(x, false);
  node->B = B;
  return out;
}

at::Tensor feedback_conv(const at::Tensor& x, const at::Tensor& W, const std::optional<at::Tensor>& b,
                         const at::Tensor& B, std::vector<int64_t> stride, std::vector<int64_t> padding,
                         std::vector<int64_t> dilation, int64_t groups) {
  auto node = c10::make_intrusive<FeedbackConvBackward>();
  const at::Tensor bias = b.value_or(at::Tensor());
  std::vector<int64_t> output_padding(stride.size(), 0);
  at::Tensor out = record(node, {x, W, bias}, [&] {
    return at::convolution(x, W, bias, stride, padding, dilation, false, output_padding, groups);
  });
  node->x_ = SavedVariable(x, false);
  node->B = B;
  node->stride = std::move(stride);
  node->padding = std::move(padding);
  node->dilation = std::move(dilation);
  node->groups = groups;
  if (bias.defined()) node->bias_sizes = std::vector<int64_t>{bias.size(0)};
  return out;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("skip_source", &skip_source, "SRBP's error source (a copy of y; backward: g to y, g C_p^T to point p)");
  m.def("feedback_linear", &feedback_linear, "RBP's linear layer (x W^T + b; backward: dx = g B)");
  m.def("feedback_conv", &feedback_conv, "RBP's convolution (backward: dx through the kernel B)");
}
