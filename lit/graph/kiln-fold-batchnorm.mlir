// RUN: %PYTHON -c "import torch; torch.save({'conv.weight': torch.ones(2, 1, 1, 1), 'mean': torch.ones(2, 1, 1), 'invstd': torch.ones(2, 1, 1), 'gamma': torch.ones(2, 1, 1), 'beta': torch.ones(2, 1, 1), 'bn.mean': torch.zeros(2), 'bn.var': torch.ones(2), 'fc.weight': torch.ones(3, 2), 'fc.bias': torch.ones(2), 'bn1d.mean': torch.ones(2)}, '%t.pt')"
// RUN: kiln-opt %s --kiln-fold-batchnorm --params %t.pt | filecheck %s

// Export's eval batch norm, (y - mean) * invstd * gamma + beta, after a conv without bias:
// one convolution with new weight and bias params is left.
// CHECK-LABEL: func.func @conv_then_decomposed_bn
//  CHECK-SAME:   (%[[X:.+]]: !torch.vtensor<[1,1,4,4],f32>)
//       CHECK:   %[[W:.+]] = "kiln.param"() {qualname = "conv.weight#{{[0-9]+}}"} : () -> !torch.vtensor<[2,1,1,1],f32>
//       CHECK:   %[[B:.+]] = "kiln.param"() {qualname = "conv.weight.bias#{{[0-9]+}}"} : () -> !torch.vtensor<[2],f32>
//       CHECK:   %[[Y:.+]] = torch.aten.convolution %[[X]], %[[W]], %[[B]]
//   CHECK-NOT:   torch.aten.sub.Tensor
//   CHECK-NOT:   torch.aten.mul.Tensor
//   CHECK-NOT:   torch.aten.add.Tensor
//       CHECK:   return %[[Y]]
func.func @conv_then_decomposed_bn(%x: !torch.vtensor<[1,1,4,4],f32>) -> !torch.vtensor<[1,2,4,4],f32> {
  %int0 = torch.constant.int 0
  %int1 = torch.constant.int 1
  %false = torch.constant.bool false
  %none = torch.constant.none
  %ones = torch.prim.ListConstruct %int1, %int1 : (!torch.int, !torch.int) -> !torch.list<int>
  %zeros = torch.prim.ListConstruct %int0, %int0 : (!torch.int, !torch.int) -> !torch.list<int>
  %w = "kiln.param"() {qualname = "conv.weight"} : () -> !torch.vtensor<[2,1,1,1],f32>
  %y = torch.aten.convolution %x, %w, %none, %ones, %zeros, %ones, %false, %zeros, %int1 : !torch.vtensor<[1,1,4,4],f32>, !torch.vtensor<[2,1,1,1],f32>, !torch.none, !torch.list<int>, !torch.list<int>, !torch.list<int>, !torch.bool, !torch.list<int>, !torch.int -> !torch.vtensor<[1,2,4,4],f32>
  %mean = "kiln.param"() {qualname = "mean"} : () -> !torch.vtensor<[2,1,1],f32>
  %invstd = "kiln.param"() {qualname = "invstd"} : () -> !torch.vtensor<[2,1,1],f32>
  %gamma = "kiln.param"() {qualname = "gamma"} : () -> !torch.vtensor<[2,1,1],f32>
  %beta = "kiln.param"() {qualname = "beta"} : () -> !torch.vtensor<[2,1,1],f32>
  %0 = torch.aten.sub.Tensor %y, %mean, %int1 : !torch.vtensor<[1,2,4,4],f32>, !torch.vtensor<[2,1,1],f32>, !torch.int -> !torch.vtensor<[1,2,4,4],f32>
  %1 = torch.aten.mul.Tensor %0, %invstd : !torch.vtensor<[1,2,4,4],f32>, !torch.vtensor<[2,1,1],f32> -> !torch.vtensor<[1,2,4,4],f32>
  %2 = torch.aten.mul.Tensor %1, %gamma : !torch.vtensor<[1,2,4,4],f32>, !torch.vtensor<[2,1,1],f32> -> !torch.vtensor<[1,2,4,4],f32>
  %3 = torch.aten.add.Tensor %2, %beta, %int1 : !torch.vtensor<[1,2,4,4],f32>, !torch.vtensor<[2,1,1],f32>, !torch.int -> !torch.vtensor<[1,2,4,4],f32>
  return %3 : !torch.vtensor<[1,2,4,4],f32>
}

// TorchScript's aten.batch_norm (eval) after a conv folds the same way.
// CHECK-LABEL: func.func @conv_then_batch_norm_op
//   CHECK-NOT:   torch.aten.batch_norm
//       CHECK:   %[[Y:.+]] = torch.aten.convolution
//  CHECK-NEXT:   return %[[Y]]
func.func @conv_then_batch_norm_op(%x: !torch.vtensor<[1,1,4,4],f32>) -> !torch.vtensor<[1,2,4,4],f32> {
  %int0 = torch.constant.int 0
  %int1 = torch.constant.int 1
  %false = torch.constant.bool false
  %none = torch.constant.none
  %eps = torch.constant.float 1.000000e-05
  %momentum = torch.constant.float 1.000000e-01
  %ones = torch.prim.ListConstruct %int1, %int1 : (!torch.int, !torch.int) -> !torch.list<int>
  %zeros = torch.prim.ListConstruct %int0, %int0 : (!torch.int, !torch.int) -> !torch.list<int>
  %w = "kiln.param"() {qualname = "conv.weight"} : () -> !torch.vtensor<[2,1,1,1],f32>
  %y = torch.aten.convolution %x, %w, %none, %ones, %zeros, %ones, %false, %zeros, %int1 : !torch.vtensor<[1,1,4,4],f32>, !torch.vtensor<[2,1,1,1],f32>, !torch.none, !torch.list<int>, !torch.list<int>, !torch.list<int>, !torch.bool, !torch.list<int>, !torch.int -> !torch.vtensor<[1,2,4,4],f32>
  %mean = "kiln.param"() {qualname = "bn.mean"} : () -> !torch.vtensor<[2],f32>
  %var = "kiln.param"() {qualname = "bn.var"} : () -> !torch.vtensor<[2],f32>
  %z = torch.aten.batch_norm %y, %none, %none, %mean, %var, %false, %momentum, %eps, %false : !torch.vtensor<[1,2,4,4],f32>, !torch.none, !torch.none, !torch.vtensor<[2],f32>, !torch.vtensor<[2],f32>, !torch.bool, !torch.float, !torch.float, !torch.bool -> !torch.vtensor<[1,2,4,4],f32>
  return %z : !torch.vtensor<[1,2,4,4],f32>
}

// export's linear (mm + bias) then batch_norm1d: the scale moves into the mm weight, one
// add of the combined bias is left.
// CHECK-LABEL: func.func @linear_then_bn1d
//       CHECK:   %[[W:.+]] = "kiln.param"() {qualname = "fc.weight#{{[0-9]+}}"} : () -> !torch.vtensor<[3,2],f32>
//       CHECK:   %[[MM:.+]] = torch.aten.mm %{{.+}}, %[[W]]
//       CHECK:   %[[B:.+]] = "kiln.param"() {qualname = "fc.bias#{{[0-9]+}}"} : () -> !torch.vtensor<[2],f32>
//       CHECK:   %[[Y:.+]] = torch.aten.add.Tensor %[[MM]], %[[B]]
//  CHECK-NEXT:   return %[[Y]]
func.func @linear_then_bn1d(%x: !torch.vtensor<[4,3],f32>) -> !torch.vtensor<[4,2],f32> {
  %int1 = torch.constant.int 1
  %w = "kiln.param"() {qualname = "fc.weight"} : () -> !torch.vtensor<[3,2],f32>
  %b = "kiln.param"() {qualname = "fc.bias"} : () -> !torch.vtensor<[2],f32>
  %mean = "kiln.param"() {qualname = "bn1d.mean"} : () -> !torch.vtensor<[2],f32>
  %mm = torch.aten.mm %x, %w : !torch.vtensor<[4,3],f32>, !torch.vtensor<[3,2],f32> -> !torch.vtensor<[4,2],f32>
  %y = torch.aten.add.Tensor %mm, %b, %int1 : !torch.vtensor<[4,2],f32>, !torch.vtensor<[2],f32>, !torch.int -> !torch.vtensor<[4,2],f32>
  %0 = torch.aten.sub.Tensor %y, %mean, %int1 : !torch.vtensor<[4,2],f32>, !torch.vtensor<[2],f32>, !torch.int -> !torch.vtensor<[4,2],f32>
  %1 = torch.aten.mul.Tensor %0, %mean : !torch.vtensor<[4,2],f32>, !torch.vtensor<[2],f32> -> !torch.vtensor<[4,2],f32>
  return %1 : !torch.vtensor<[4,2],f32>
}

// The conv's output has a second user, so the batch norm must stay.
// CHECK-LABEL: func.func @conv_output_used_twice
//       CHECK:   %[[Y:.+]] = torch.aten.convolution
//       CHECK:   %[[S:.+]] = torch.aten.sub.Tensor %[[Y]]
//       CHECK:   torch.aten.add.Tensor %[[S]], %[[Y]]
func.func @conv_output_used_twice(%x: !torch.vtensor<[1,1,4,4],f32>) -> !torch.vtensor<[1,2,4,4],f32> {
  %int0 = torch.constant.int 0
  %int1 = torch.constant.int 1
  %false = torch.constant.bool false
  %none = torch.constant.none
  %ones = torch.prim.ListConstruct %int1, %int1 : (!torch.int, !torch.int) -> !torch.list<int>
  %zeros = torch.prim.ListConstruct %int0, %int0 : (!torch.int, !torch.int) -> !torch.list<int>
  %w = "kiln.param"() {qualname = "conv.weight"} : () -> !torch.vtensor<[2,1,1,1],f32>
  %y = torch.aten.convolution %x, %w, %none, %ones, %zeros, %ones, %false, %zeros, %int1 : !torch.vtensor<[1,1,4,4],f32>, !torch.vtensor<[2,1,1,1],f32>, !torch.none, !torch.list<int>, !torch.list<int>, !torch.list<int>, !torch.bool, !torch.list<int>, !torch.int -> !torch.vtensor<[1,2,4,4],f32>
  %mean = "kiln.param"() {qualname = "mean"} : () -> !torch.vtensor<[2,1,1],f32>
  %0 = torch.aten.sub.Tensor %y, %mean, %int1 : !torch.vtensor<[1,2,4,4],f32>, !torch.vtensor<[2,1,1],f32>, !torch.int -> !torch.vtensor<[1,2,4,4],f32>
  %1 = torch.aten.add.Tensor %0, %y, %int1 : !torch.vtensor<[1,2,4,4],f32>, !torch.vtensor<[1,2,4,4],f32>, !torch.int -> !torch.vtensor<[1,2,4,4],f32>
  return %1 : !torch.vtensor<[1,2,4,4],f32>
}

// Statistics that are function arguments are not known at compile time: nothing folds.
// CHECK-LABEL: func.func @stats_not_params
//       CHECK:   torch.aten.convolution
//       CHECK:   torch.aten.mul.Tensor
func.func @stats_not_params(%x: !torch.vtensor<[1,1,4,4],f32>, %s: !torch.vtensor<[2,1,1],f32>) -> !torch.vtensor<[1,2,4,4],f32> {
  %int0 = torch.constant.int 0
  %int1 = torch.constant.int 1
  %false = torch.constant.bool false
  %none = torch.constant.none
  %ones = torch.prim.ListConstruct %int1, %int1 : (!torch.int, !torch.int) -> !torch.list<int>
  %zeros = torch.prim.ListConstruct %int0, %int0 : (!torch.int, !torch.int) -> !torch.list<int>
  %w = "kiln.param"() {qualname = "conv.weight"} : () -> !torch.vtensor<[2,1,1,1],f32>
  %y = torch.aten.convolution %x, %w, %none, %ones, %zeros, %ones, %false, %zeros, %int1 : !torch.vtensor<[1,1,4,4],f32>, !torch.vtensor<[2,1,1,1],f32>, !torch.none, !torch.list<int>, !torch.list<int>, !torch.list<int>, !torch.bool, !torch.list<int>, !torch.int -> !torch.vtensor<[1,2,4,4],f32>
  %0 = torch.aten.mul.Tensor %y, %s : !torch.vtensor<[1,2,4,4],f32>, !torch.vtensor<[2,1,1],f32> -> !torch.vtensor<[1,2,4,4],f32>
  return %0 : !torch.vtensor<[1,2,4,4],f32>
}
