// RUN: kiln-opt %s --kiln-batch-slices | filecheck %s
// RUN: kiln-opt %s --kiln-batch-slices --stats 2>&1 >/dev/null | filecheck %s --check-prefix=STATS

// STATS: // kiln-batch-slices: 19 ops batched

// An unrolled 3-step loop of the tutorial cell: linear, sum, compare, neg and where read only
// the step's slice of %xs (and common values), so each runs once on all of %xs; the 0-d
// condition lines up with [3,4] results as [3,1,1]. add/tanh carry %h from step to step and
// stay per step.
// CHECK-LABEL: func.func @rnn_steps
//  CHECK-SAME:   (%[[XS:.+]]: !torch.vtensor<[3,3,4],f32>, %[[H:.+]]: !torch.vtensor<[3,4],f32>, %[[W:.+]]: !torch.vtensor<[4,4],f32>, %[[B:.+]]: !torch.vtensor<[4],f32>)
//       CHECK:   %[[Y:.+]] = torch.aten.linear %[[XS]], %[[W]], %[[B]] : {{.*}} -> !torch.vtensor<[3,3,4],f32>
//       CHECK:   %[[S:.+]] = torch.aten.sum.dim_IntList %[[Y]], {{.*}} -> !torch.vtensor<[3],f32>
//       CHECK:   %[[GT:.+]] = torch.aten.gt.Scalar %[[S]], {{.*}} -> !torch.vtensor<[3],i1>
//       CHECK:   %[[N:.+]] = torch.aten.neg %[[Y]] : {{.*}} -> !torch.vtensor<[3,3,4],f32>
//       CHECK:   %[[C:.+]] = torch.aten.unsqueeze {{.*}} -> !torch.vtensor<[3,1,1],i1>
//       CHECK:   %[[G:.+]] = torch.aten.where.self %[[C]], %[[Y]], %[[N]] : {{.*}} -> !torch.vtensor<[3,3,4],f32>
//   CHECK-NOT:   torch.aten.linear
//   CHECK-NOT:   torch.aten.where.self
//       CHECK:   %[[G0:.+]] = torch.aten.select.int %[[G]], %{{.+}}, %{{.+}} : {{.*}} -> !torch.vtensor<[3,4],f32>
//       CHECK:   torch.aten.add.Tensor %[[G0]], %[[H]]
//       CHECK:   torch.aten.tanh
//       CHECK:   torch.aten.add.Tensor
//       CHECK:   torch.aten.tanh
//       CHECK:   torch.aten.add.Tensor
//       CHECK:   torch.aten.tanh
func.func @rnn_steps(%xs: !torch.vtensor<[3,3,4],f32>, %h: !torch.vtensor<[3,4],f32>,
                     %w: !torch.vtensor<[4,4],f32>, %b: !torch.vtensor<[4],f32>) -> !torch.vtensor<[3,4],f32> {
  %none = torch.constant.none
  %int0 = torch.constant.int 0
  %int1 = torch.constant.int 1
  %int2 = torch.constant.int 2
  %x0 = torch.aten.select.int %xs, %int0, %int0 : !torch.vtensor<[3,3,4],f32>, !torch.int, !torch.int -> !torch.vtensor<[3,4],f32>
  %y0 = torch.aten.linear %x0, %w, %b : !torch.vtensor<[3,4],f32>, !torch.vtensor<[4,4],f32>, !torch.vtensor<[4],f32> -> !torch.vtensor<[3,4],f32>
  %s0 = torch.aten.sum %y0, %none : !torch.vtensor<[3,4],f32>, !torch.none -> !torch.vtensor<[],f32>
  %c0 = torch.aten.gt.Scalar %s0, %int0 : !torch.vtensor<[],f32>, !torch.int -> !torch.vtensor<[],i1>
  %n0 = torch.aten.neg %y0 : !torch.vtensor<[3,4],f32> -> !torch.vtensor<[3,4],f32>
  %g0 = torch.aten.where.self %c0, %y0, %n0 : !torch.vtensor<[],i1>, !torch.vtensor<[3,4],f32>, !torch.vtensor<[3,4],f32> -> !torch.vtensor<[3,4],f32>
  %a0 = torch.aten.add.Tensor %g0, %h, %int1 : !torch.vtensor<[3,4],f32>, !torch.vtensor<[3,4],f32>, !torch.int -> !torch.vtensor<[3,4],f32>
  %h0 = torch.aten.tanh %a0 : !torch.vtensor<[3,4],f32> -> !torch.vtensor<[3,4],f32>
  %x1 = torch.aten.select.int %xs, %int0, %int1 : !torch.vtensor<[3,3,4],f32>, !torch.int, !torch.int -> !torch.vtensor<[3,4],f32>
  %y1 = torch.aten.linear %x1, %w, %b : !torch.vtensor<[3,4],f32>, !torch.vtensor<[4,4],f32>, !torch.vtensor<[4],f32> -> !torch.vtensor<[3,4],f32>
  %s1 = torch.aten.sum %y1, %none : !torch.vtensor<[3,4],f32>, !torch.none -> !torch.vtensor<[],f32>
  %c1 = torch.aten.gt.Scalar %s1, %int0 : !torch.vtensor<[],f32>, !torch.int -> !torch.vtensor<[],i1>
  %n1 = torch.aten.neg %y1 : !torch.vtensor<[3,4],f32> -> !torch.vtensor<[3,4],f32>
  %g1 = torch.aten.where.self %c1, %y1, %n1 : !torch.vtensor<[],i1>, !torch.vtensor<[3,4],f32>, !torch.vtensor<[3,4],f32> -> !torch.vtensor<[3,4],f32>
  %a1 = torch.aten.add.Tensor %g1, %h0, %int1 : !torch.vtensor<[3,4],f32>, !torch.vtensor<[3,4],f32>, !torch.int -> !torch.vtensor<[3,4],f32>
  %h1 = torch.aten.tanh %a1 : !torch.vtensor<[3,4],f32> -> !torch.vtensor<[3,4],f32>
  %x2 = torch.aten.select.int %xs, %int0, %int2 : !torch.vtensor<[3,3,4],f32>, !torch.int, !torch.int -> !torch.vtensor<[3,4],f32>
  %y2 = torch.aten.linear %x2, %w, %b : !torch.vtensor<[3,4],f32>, !torch.vtensor<[4,4],f32>, !torch.vtensor<[4],f32> -> !torch.vtensor<[3,4],f32>
  %s2 = torch.aten.sum %y2, %none : !torch.vtensor<[3,4],f32>, !torch.none -> !torch.vtensor<[],f32>
  %c2 = torch.aten.gt.Scalar %s2, %int0 : !torch.vtensor<[],f32>, !torch.int -> !torch.vtensor<[],i1>
  %n2 = torch.aten.neg %y2 : !torch.vtensor<[3,4],f32> -> !torch.vtensor<[3,4],f32>
  %g2 = torch.aten.where.self %c2, %y2, %n2 : !torch.vtensor<[],i1>, !torch.vtensor<[3,4],f32>, !torch.vtensor<[3,4],f32> -> !torch.vtensor<[3,4],f32>
  %a2 = torch.aten.add.Tensor %g2, %h1, %int1 : !torch.vtensor<[3,4],f32>, !torch.vtensor<[3,4],f32>, !torch.int -> !torch.vtensor<[3,4],f32>
  %h2 = torch.aten.tanh %a2 : !torch.vtensor<[3,4],f32> -> !torch.vtensor<[3,4],f32>
  return %h2 : !torch.vtensor<[3,4],f32>
}

// Not every index is taken (no slice 1): nothing is batched.
// CHECK-LABEL: func.func @missing_slice
//   CHECK-NOT:   !torch.vtensor<[3,4,4],f32>
//       CHECK:   return
func.func @missing_slice(%xs: !torch.vtensor<[3,4],f32>, %w: !torch.vtensor<[4,4],f32>) -> (!torch.vtensor<[4],f32>, !torch.vtensor<[4],f32>) {
  %int0 = torch.constant.int 0
  %int2 = torch.constant.int 2
  %x0 = torch.aten.select.int %xs, %int0, %int0 : !torch.vtensor<[3,4],f32>, !torch.int, !torch.int -> !torch.vtensor<[4],f32>
  %x2 = torch.aten.select.int %xs, %int0, %int2 : !torch.vtensor<[3,4],f32>, !torch.int, !torch.int -> !torch.vtensor<[4],f32>
  %y0 = torch.aten.matmul %x0, %w : !torch.vtensor<[4],f32>, !torch.vtensor<[4,4],f32> -> !torch.vtensor<[4],f32>
  %y2 = torch.aten.matmul %x2, %w : !torch.vtensor<[4],f32>, !torch.vtensor<[4,4],f32> -> !torch.vtensor<[4],f32>
  return %y0, %y2 : !torch.vtensor<[4],f32>, !torch.vtensor<[4],f32>
}

// Per-step operands that differ (step i reads slice i and a different weight) stay per step;
// the common add batches, with a rank-1 slice broadcasting against a [2,4] bias.
// CHECK-LABEL: func.func @different_weights
//       CHECK:   torch.aten.matmul %{{.+}}, %[[W0:.+]] : !torch.vtensor<[4],f32>
//       CHECK:   torch.aten.matmul %{{.+}}, %[[W1:.+]] : !torch.vtensor<[4],f32>
//       CHECK:   %[[U:.+]] = torch.aten.unsqueeze %{{.+}} -> !torch.vtensor<[2,1,4],f32>
//       CHECK:   torch.aten.add.Tensor %[[U]], %{{.+}} -> !torch.vtensor<[2,2,4],f32>
func.func @different_weights(%xs: !torch.vtensor<[2,4],f32>, %w0: !torch.vtensor<[4,4],f32>, %w1: !torch.vtensor<[4,4],f32>, %bias: !torch.vtensor<[2,4],f32>) -> (!torch.vtensor<[4],f32>, !torch.vtensor<[4],f32>, !torch.vtensor<[2,4],f32>, !torch.vtensor<[2,4],f32>) {
  %int0 = torch.constant.int 0
  %int1 = torch.constant.int 1
  %x0 = torch.aten.select.int %xs, %int0, %int0 : !torch.vtensor<[2,4],f32>, !torch.int, !torch.int -> !torch.vtensor<[4],f32>
  %x1 = torch.aten.select.int %xs, %int0, %int1 : !torch.vtensor<[2,4],f32>, !torch.int, !torch.int -> !torch.vtensor<[4],f32>
  %y0 = torch.aten.matmul %x0, %w0 : !torch.vtensor<[4],f32>, !torch.vtensor<[4,4],f32> -> !torch.vtensor<[4],f32>
  %y1 = torch.aten.matmul %x1, %w1 : !torch.vtensor<[4],f32>, !torch.vtensor<[4,4],f32> -> !torch.vtensor<[4],f32>
  %z0 = torch.aten.add.Tensor %x0, %bias, %int1 : !torch.vtensor<[4],f32>, !torch.vtensor<[2,4],f32>, !torch.int -> !torch.vtensor<[2,4],f32>
  %z1 = torch.aten.add.Tensor %x1, %bias, %int1 : !torch.vtensor<[4],f32>, !torch.vtensor<[2,4],f32>, !torch.int -> !torch.vtensor<[2,4],f32>
  return %y0, %y1, %z0, %z1 : !torch.vtensor<[4],f32>, !torch.vtensor<[4],f32>, !torch.vtensor<[2,4],f32>, !torch.vtensor<[2,4],f32>
}

// Each step reads its own kiln.param of one weight (MLIR does not CSE kiln ops): still one
// weight, so the mm batches (as a matmul) with step 0's param.
// CHECK-LABEL: func.func @weight_read_per_step
//       CHECK:   %[[W0:.+]] = "kiln.param"() {qualname = "w"}
//       CHECK:   torch.aten.matmul %{{.+}}, %[[W0]] : !torch.vtensor<[2,3,4],f32>, !torch.vtensor<[4,4],f32> -> !torch.vtensor<[2,3,4],f32>
//   CHECK-NOT:   torch.aten.mm
func.func @weight_read_per_step(%xs: !torch.vtensor<[2,3,4],f32>) -> (!torch.vtensor<[3,4],f32>, !torch.vtensor<[3,4],f32>) {
  %int0 = torch.constant.int 0
  %int1 = torch.constant.int 1
  %x0 = torch.aten.select.int %xs, %int0, %int0 : !torch.vtensor<[2,3,4],f32>, !torch.int, !torch.int -> !torch.vtensor<[3,4],f32>
  %w0 = "kiln.param"() {qualname = "w"} : () -> !torch.vtensor<[4,4],f32>
  %y0 = torch.aten.mm %x0, %w0 : !torch.vtensor<[3,4],f32>, !torch.vtensor<[4,4],f32> -> !torch.vtensor<[3,4],f32>
  %x1 = torch.aten.select.int %xs, %int0, %int1 : !torch.vtensor<[2,3,4],f32>, !torch.int, !torch.int -> !torch.vtensor<[3,4],f32>
  %w1 = "kiln.param"() {qualname = "w"} : () -> !torch.vtensor<[4,4],f32>
  %y1 = torch.aten.mm %x1, %w1 : !torch.vtensor<[3,4],f32>, !torch.vtensor<[4,4],f32> -> !torch.vtensor<[3,4],f32>
  return %y0, %y1 : !torch.vtensor<[3,4],f32>, !torch.vtensor<[3,4],f32>
}

// Two reads of different weights are not one value: nothing batches.
// CHECK-LABEL: func.func @different_params
//   CHECK-NOT:   torch.aten.matmul
func.func @different_params(%xs: !torch.vtensor<[2,3,4],f32>) -> (!torch.vtensor<[3,4],f32>, !torch.vtensor<[3,4],f32>) {
  %int0 = torch.constant.int 0
  %int1 = torch.constant.int 1
  %x0 = torch.aten.select.int %xs, %int0, %int0 : !torch.vtensor<[2,3,4],f32>, !torch.int, !torch.int -> !torch.vtensor<[3,4],f32>
  %w0 = "kiln.param"() {qualname = "w"} : () -> !torch.vtensor<[4,4],f32>
  %y0 = torch.aten.mm %x0, %w0 : !torch.vtensor<[3,4],f32>, !torch.vtensor<[4,4],f32> -> !torch.vtensor<[3,4],f32>
  %x1 = torch.aten.select.int %xs, %int0, %int1 : !torch.vtensor<[2,3,4],f32>, !torch.int, !torch.int -> !torch.vtensor<[3,4],f32>
  %w1 = "kiln.param"() {qualname = "v"} : () -> !torch.vtensor<[4,4],f32>
  %y1 = torch.aten.mm %x1, %w1 : !torch.vtensor<[3,4],f32>, !torch.vtensor<[4,4],f32> -> !torch.vtensor<[3,4],f32>
  return %y0, %y1 : !torch.vtensor<[3,4],f32>, !torch.vtensor<[3,4],f32>
}

// A common operand with batch dims of its own would broadcast against N: no batching.
// CHECK-LABEL: func.func @batched_common_operand
//   CHECK-NOT:   !torch.vtensor<[2,5,3,4],f32>
//       CHECK:   return
func.func @batched_common_operand(%xs: !torch.vtensor<[2,3,4],f32>, %w: !torch.vtensor<[5,4,4],f32>) -> (!torch.vtensor<[5,3,4],f32>, !torch.vtensor<[5,3,4],f32>) {
  %int0 = torch.constant.int 0
  %int1 = torch.constant.int 1
  %x0 = torch.aten.select.int %xs, %int0, %int0 : !torch.vtensor<[2,3,4],f32>, !torch.int, !torch.int -> !torch.vtensor<[3,4],f32>
  %x1 = torch.aten.select.int %xs, %int0, %int1 : !torch.vtensor<[2,3,4],f32>, !torch.int, !torch.int -> !torch.vtensor<[3,4],f32>
  %y0 = torch.aten.matmul %x0, %w : !torch.vtensor<[3,4],f32>, !torch.vtensor<[5,4,4],f32> -> !torch.vtensor<[5,3,4],f32>
  %y1 = torch.aten.matmul %x1, %w : !torch.vtensor<[3,4],f32>, !torch.vtensor<[5,4,4],f32> -> !torch.vtensor<[5,3,4],f32>
  return %y0, %y1 : !torch.vtensor<[5,3,4],f32>, !torch.vtensor<[5,3,4],f32>
}

// Slices of tensors with different leading sizes (2 and 3) do not pair up.
// CHECK-LABEL: func.func @different_lengths
//   CHECK-NOT:   !torch.vtensor<[2,4],f32>, !torch.vtensor<[3,4],f32>
//       CHECK:   return
func.func @different_lengths(%xs: !torch.vtensor<[2,4],f32>, %ys: !torch.vtensor<[3,4],f32>) -> (!torch.vtensor<[4],f32>, !torch.vtensor<[4],f32>, !torch.vtensor<[4],f32>) {
  %int0 = torch.constant.int 0
  %int1 = torch.constant.int 1
  %int2 = torch.constant.int 2
  %x0 = torch.aten.select.int %xs, %int0, %int0 : !torch.vtensor<[2,4],f32>, !torch.int, !torch.int -> !torch.vtensor<[4],f32>
  %x1 = torch.aten.select.int %xs, %int0, %int1 : !torch.vtensor<[2,4],f32>, !torch.int, !torch.int -> !torch.vtensor<[4],f32>
  %y0 = torch.aten.select.int %ys, %int0, %int0 : !torch.vtensor<[3,4],f32>, !torch.int, !torch.int -> !torch.vtensor<[4],f32>
  %y1 = torch.aten.select.int %ys, %int0, %int1 : !torch.vtensor<[3,4],f32>, !torch.int, !torch.int -> !torch.vtensor<[4],f32>
  %y2 = torch.aten.select.int %ys, %int0, %int2 : !torch.vtensor<[3,4],f32>, !torch.int, !torch.int -> !torch.vtensor<[4],f32>
  %a0 = torch.aten.mul.Tensor %x0, %y0 : !torch.vtensor<[4],f32>, !torch.vtensor<[4],f32> -> !torch.vtensor<[4],f32>
  %a1 = torch.aten.mul.Tensor %x1, %y1 : !torch.vtensor<[4],f32>, !torch.vtensor<[4],f32> -> !torch.vtensor<[4],f32>
  %a2 = torch.aten.mul.Tensor %x1, %y2 : !torch.vtensor<[4],f32>, !torch.vtensor<[4],f32> -> !torch.vtensor<[4],f32>
  return %a0, %a1, %a2 : !torch.vtensor<[4],f32>, !torch.vtensor<[4],f32>, !torch.vtensor<[4],f32>
}
