// RUN: kiln-opt %s --kiln-fuse-elementwise | filecheck %s
// Running it again changes nothing: groups are not nested.
// RUN: kiln-opt %s --kiln-fuse-elementwise --kiln-fuse-elementwise | filecheck %s

// A chain of elementwise ops becomes one group yielding the last value.
// CHECK-LABEL: func.func @tanh_then_sigmoid
//  CHECK-SAME:   (%[[X:.+]]: !torch.vtensor<[8],f32>)
//       CHECK:   %[[G:.+]] = "kiln.fused"(%[[X]]) ({
//  CHECK-NEXT:   ^bb0(%[[A:.+]]: !torch.vtensor<[8],f32>):
//  CHECK-NEXT:     %[[T:.+]] = torch.aten.tanh %[[A]]
//  CHECK-NEXT:     %[[S:.+]] = torch.aten.sigmoid %[[T]]
//  CHECK-NEXT:     "kiln.yield"(%[[S]])
//  CHECK-NEXT:   }) : (!torch.vtensor<[8],f32>) -> !torch.vtensor<[8],f32>
//  CHECK-NEXT:   return %[[G]]
func.func @tanh_then_sigmoid(%x: !torch.vtensor<[8],f32>) -> !torch.vtensor<[8],f32> {
  %0 = torch.aten.tanh %x : !torch.vtensor<[8],f32> -> !torch.vtensor<[8],f32>
  %1 = torch.aten.sigmoid %0 : !torch.vtensor<[8],f32> -> !torch.vtensor<[8],f32>
  return %1 : !torch.vtensor<[8],f32>
}

// Broadcast operands become inputs; scalar constants are cloned into the body.
// CHECK-LABEL: func.func @bias_gelu
//  CHECK-SAME:   (%[[X:.+]]: !torch.vtensor<[4,8],f32>, %[[B:.+]]: !torch.vtensor<[8],f32>)
//       CHECK:   %[[G:.+]] = "kiln.fused"(%[[X]], %[[B]]) ({
//  CHECK-NEXT:   ^bb0(%[[A:.+]]: !torch.vtensor<[4,8],f32>, %[[C:.+]]: !torch.vtensor<[8],f32>):
//   CHECK-DAG:     %[[ONE:.+]] = torch.constant.int 1
//   CHECK-DAG:     %[[NONE:.+]] = torch.constant.str "none"
//       CHECK:     %[[S:.+]] = torch.aten.add.Tensor %[[A]], %[[C]], %[[ONE]]
//  CHECK-NEXT:     %[[Y:.+]] = torch.aten.gelu %[[S]], %[[NONE]]
//  CHECK-NEXT:     "kiln.yield"(%[[Y]])
//       CHECK:   return %[[G]]
func.func @bias_gelu(%x: !torch.vtensor<[4,8],f32>, %b: !torch.vtensor<[8],f32>) -> !torch.vtensor<[4,8],f32> {
  %int1 = torch.constant.int 1
  %none = torch.constant.str "none"
  %0 = torch.aten.add.Tensor %x, %b, %int1 : !torch.vtensor<[4,8],f32>, !torch.vtensor<[8],f32>, !torch.int -> !torch.vtensor<[4,8],f32>
  %1 = torch.aten.gelu %0, %none : !torch.vtensor<[4,8],f32>, !torch.str -> !torch.vtensor<[4,8],f32>
  return %1 : !torch.vtensor<[4,8],f32>
}

// A value used several times inside the group (a DAG, not only a chain) joins it, and so
// does the i1 condition computed from it.
// CHECK-LABEL: func.func @where_positive
//       CHECK:   %[[G:.+]] = "kiln.fused"
//       CHECK:     %[[N:.+]] = torch.aten.neg
//  CHECK-NEXT:     %[[C:.+]] = torch.aten.gt.Scalar %[[N]]
//  CHECK-NEXT:     %[[E:.+]] = torch.aten.exp %[[N]]
//  CHECK-NEXT:     %[[W:.+]] = torch.aten.where.self %[[C]], %[[N]], %[[E]]
//  CHECK-NEXT:     "kiln.yield"(%[[W]])
//   CHECK-NOT:   torch.aten
//       CHECK:   return %[[G]]
func.func @where_positive(%x: !torch.vtensor<[8],f32>) -> !torch.vtensor<[8],f32> {
  %int0 = torch.constant.int 0
  %0 = torch.aten.neg %x : !torch.vtensor<[8],f32> -> !torch.vtensor<[8],f32>
  %1 = torch.aten.gt.Scalar %0, %int0 : !torch.vtensor<[8],f32>, !torch.int -> !torch.vtensor<[8],i1>
  %2 = torch.aten.exp %0 : !torch.vtensor<[8],f32> -> !torch.vtensor<[8],f32>
  %3 = torch.aten.where.self %1, %0, %2 : !torch.vtensor<[8],i1>, !torch.vtensor<[8],f32>, !torch.vtensor<[8],f32> -> !torch.vtensor<[8],f32>
  return %3 : !torch.vtensor<[8],f32>
}

// One op alone is not worth a group: leave it.
// CHECK-LABEL: func.func @single_op
//   CHECK-NOT:   kiln.fused
//       CHECK:   torch.aten.tanh
func.func @single_op(%x: !torch.vtensor<[8],f32>) -> !torch.vtensor<[8],f32> {
  %0 = torch.aten.tanh %x : !torch.vtensor<[8],f32> -> !torch.vtensor<[8],f32>
  return %0 : !torch.vtensor<[8],f32>
}

// The sigmoid is also returned: it ends the first group (its root) and the ops after it
// form a second group that takes it as an input. Nothing is computed twice.
// CHECK-LABEL: func.func @outside_use_mid_chain
//       CHECK:   %[[G1:.+]] = "kiln.fused"
//       CHECK:     torch.aten.tanh
//  CHECK-NEXT:     %[[S:.+]] = torch.aten.sigmoid
//  CHECK-NEXT:     "kiln.yield"(%[[S]])
//       CHECK:   %[[G2:.+]] = "kiln.fused"(%[[G1]])
//       CHECK:     torch.aten.exp
//  CHECK-NEXT:     %[[N:.+]] = torch.aten.neg
//  CHECK-NEXT:     "kiln.yield"(%[[N]])
//       CHECK:   return %[[G1]], %[[G2]]
func.func @outside_use_mid_chain(%x: !torch.vtensor<[8],f32>) -> (!torch.vtensor<[8],f32>, !torch.vtensor<[8],f32>) {
  %0 = torch.aten.tanh %x : !torch.vtensor<[8],f32> -> !torch.vtensor<[8],f32>
  %1 = torch.aten.sigmoid %0 : !torch.vtensor<[8],f32> -> !torch.vtensor<[8],f32>
  %2 = torch.aten.exp %1 : !torch.vtensor<[8],f32> -> !torch.vtensor<[8],f32>
  %3 = torch.aten.neg %2 : !torch.vtensor<[8],f32> -> !torch.vtensor<[8],f32>
  return %1, %3 : !torch.vtensor<[8],f32>, !torch.vtensor<[8],f32>
}

// An op outside the table (mm) stops the group: one group before it, one after.
// CHECK-LABEL: func.func @matmul_breaks_the_chain
//       CHECK:   %[[G1:.+]] = "kiln.fused"
//       CHECK:     torch.aten.tanh
//  CHECK-NEXT:     torch.aten.relu
//       CHECK:   %[[M:.+]] = torch.aten.mm %[[G1]], %[[G1]]
//       CHECK:   %[[G2:.+]] = "kiln.fused"(%[[M]])
//       CHECK:     torch.aten.exp
//  CHECK-NEXT:     torch.aten.neg
//       CHECK:   return %[[G2]]
func.func @matmul_breaks_the_chain(%x: !torch.vtensor<[4,4],f32>) -> !torch.vtensor<[4,4],f32> {
  %0 = torch.aten.tanh %x : !torch.vtensor<[4,4],f32> -> !torch.vtensor<[4,4],f32>
  %1 = torch.aten.relu %0 : !torch.vtensor<[4,4],f32> -> !torch.vtensor<[4,4],f32>
  %2 = torch.aten.mm %1, %1 : !torch.vtensor<[4,4],f32>, !torch.vtensor<[4,4],f32> -> !torch.vtensor<[4,4],f32>
  %3 = torch.aten.exp %2 : !torch.vtensor<[4,4],f32> -> !torch.vtensor<[4,4],f32>
  %4 = torch.aten.neg %3 : !torch.vtensor<[4,4],f32> -> !torch.vtensor<[4,4],f32>
  return %4 : !torch.vtensor<[4,4],f32>
}

// Not formed: a dynamic dim, an integer tensor, a scalar that is not a constant, and
// gelu with an approximation the table does not know.
// CHECK-LABEL: func.func @not_fusable
//   CHECK-NOT:   kiln.fused
func.func @not_fusable(%x: !torch.vtensor<[?],f32>, %i: !torch.vtensor<[8],si64>, %y: !torch.vtensor<[8],f32>, %s: !torch.float) -> (!torch.vtensor<[?],f32>, !torch.vtensor<[8],si64>, !torch.vtensor<[8],f32>, !torch.vtensor<[8],f32>) {
  %int1 = torch.constant.int 1
  %bad = torch.constant.str "cubic"
  %0 = torch.aten.tanh %x : !torch.vtensor<[?],f32> -> !torch.vtensor<[?],f32>
  %1 = torch.aten.neg %0 : !torch.vtensor<[?],f32> -> !torch.vtensor<[?],f32>
  %2 = torch.aten.neg %i : !torch.vtensor<[8],si64> -> !torch.vtensor<[8],si64>
  %3 = torch.aten.abs %2 : !torch.vtensor<[8],si64> -> !torch.vtensor<[8],si64>
  %4 = torch.aten.mul.Scalar %y, %s : !torch.vtensor<[8],f32>, !torch.float -> !torch.vtensor<[8],f32>
  %5 = torch.aten.add.Scalar %4, %s, %int1 : !torch.vtensor<[8],f32>, !torch.float, !torch.int -> !torch.vtensor<[8],f32>
  %6 = torch.aten.gelu %y, %bad : !torch.vtensor<[8],f32>, !torch.str -> !torch.vtensor<[8],f32>
  %7 = torch.aten.gelu %6, %bad : !torch.vtensor<[8],f32>, !torch.str -> !torch.vtensor<[8],f32>
  return %1, %3, %5, %7 : !torch.vtensor<[?],f32>, !torch.vtensor<[8],si64>, !torch.vtensor<[8],f32>, !torch.vtensor<[8],f32>
}
