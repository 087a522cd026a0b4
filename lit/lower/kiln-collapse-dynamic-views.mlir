// RUN: kiln-opt %s --kiln-collapse-dynamic-views | filecheck %s

// nn.Linear on [B, S, 32]: merging batch and sequence becomes one prims.collapse of dims 0..1.
// CHECK-LABEL: func.func @merge_batch_and_sequence
//  CHECK-SAME:   (%[[X:.+]]: !torch.vtensor<[?,?,32],f32>)
//       CHECK:   %[[C0:.+]] = torch.constant.int 0
//       CHECK:   %[[C1:.+]] = torch.constant.int 1
//       CHECK:   %[[R:.+]] = torch.prims.collapse %[[X]], %[[C0]], %[[C1]] : {{.*}} -> !torch.vtensor<[?,32],f32>
//   CHECK-NOT:   torch.aten.view
//       CHECK:   return %[[R]]
func.func @merge_batch_and_sequence(%x: !torch.vtensor<[?,?,32],f32>) -> !torch.vtensor<[?,32],f32> {
  %int0 = torch.constant.int 0
  %int1 = torch.constant.int 1
  %int32 = torch.constant.int 32
  %0 = torch.aten.size.int %x, %int0 : !torch.vtensor<[?,?,32],f32>, !torch.int -> !torch.int
  %1 = torch.aten.size.int %x, %int1 : !torch.vtensor<[?,?,32],f32>, !torch.int -> !torch.int
  %2 = torch.aten.mul.int %0, %1 : !torch.int, !torch.int -> !torch.int
  %3 = torch.prim.ListConstruct %2, %int32 : (!torch.int, !torch.int) -> !torch.list<int>
  %4 = torch.aten.view %x, %3 : !torch.vtensor<[?,?,32],f32>, !torch.list<int> -> !torch.vtensor<[?,32],f32>
  return %4 : !torch.vtensor<[?,32],f32>
}

// Two runs merged ([B, S, 4, 8] -> [B*S, 32]): the last run collapses first.
// CHECK-LABEL: func.func @merge_two_runs
//       CHECK:   %[[C2:.+]] = torch.constant.int 2
//       CHECK:   %[[C3:.+]] = torch.constant.int 3
//       CHECK:   %[[A:.+]] = torch.prims.collapse %{{.+}}, %[[C2]], %[[C3]] : {{.*}} -> !torch.vtensor<[?,?,32],f32>
//       CHECK:   %[[C0:.+]] = torch.constant.int 0
//       CHECK:   %[[C1:.+]] = torch.constant.int 1
//       CHECK:   %[[B:.+]] = torch.prims.collapse %[[A]], %[[C0]], %[[C1]] : {{.*}} -> !torch.vtensor<[?,32],f32>
//       CHECK:   return %[[B]]
func.func @merge_two_runs(%x: !torch.vtensor<[?,?,4,8],f32>) -> !torch.vtensor<[?,32],f32> {
  %int0 = torch.constant.int 0
  %int1 = torch.constant.int 1
  %int32 = torch.constant.int 32
  %0 = torch.aten.size.int %x, %int0 : !torch.vtensor<[?,?,4,8],f32>, !torch.int -> !torch.int
  %1 = torch.aten.size.int %x, %int1 : !torch.vtensor<[?,?,4,8],f32>, !torch.int -> !torch.int
  %2 = torch.aten.mul.int %0, %1 : !torch.int, !torch.int -> !torch.int
  %3 = torch.prim.ListConstruct %2, %int32 : (!torch.int, !torch.int) -> !torch.list<int>
  %4 = torch.aten.view %x, %3 : !torch.vtensor<[?,?,4,8],f32>, !torch.list<int> -> !torch.vtensor<[?,32],f32>
  return %4 : !torch.vtensor<[?,32],f32>
}

// Sizes from another tensor (attention heads): flatten to 1-D, then view that.
// CHECK-LABEL: func.func @split_heads
//  CHECK-SAME:   (%[[X:[^:]+]]: !torch.vtensor<[?,?,32],f32>, %[[Y:.+]]: !torch.vtensor<[?,?],f32>)
//       CHECK:   %[[FLAT:.+]] = torch.prims.collapse %[[X]], %{{.+}}, %{{.+}} : {{.*}} -> !torch.vtensor<[?],f32>
//       CHECK:   %[[R:.+]] = torch.aten.view %[[FLAT]], %{{.+}} : !torch.vtensor<[?],f32>, !torch.list<int> -> !torch.vtensor<[?,?,8],f32>
//       CHECK:   return %[[R]]
func.func @split_heads(%x: !torch.vtensor<[?,?,32],f32>, %y: !torch.vtensor<[?,?],f32>) -> !torch.vtensor<[?,?,8],f32> {
  %int0 = torch.constant.int 0
  %int1 = torch.constant.int 1
  %int4 = torch.constant.int 4
  %int8 = torch.constant.int 8
  %0 = torch.aten.size.int %y, %int0 : !torch.vtensor<[?,?],f32>, !torch.int -> !torch.int
  %1 = torch.aten.size.int %y, %int1 : !torch.vtensor<[?,?],f32>, !torch.int -> !torch.int
  %2 = torch.aten.mul.int %0, %int4 : !torch.int, !torch.int -> !torch.int
  %3 = torch.prim.ListConstruct %1, %2, %int8 : (!torch.int, !torch.int, !torch.int) -> !torch.list<int>
  %4 = torch.aten.view %x, %3 : !torch.vtensor<[?,?,32],f32>, !torch.list<int> -> !torch.vtensor<[?,?,8],f32>
  return %4 : !torch.vtensor<[?,?,8],f32>
}

// One dynamic source dim: torch-mlir lowers the view right, so it stays.
// CHECK-LABEL: func.func @one_dynamic_dim_is_left_alone
//   CHECK-NOT:   torch.prims.collapse
//       CHECK:   torch.aten.view
func.func @one_dynamic_dim_is_left_alone(%x: !torch.vtensor<[?,4,8],f32>) -> !torch.vtensor<[?,32],f32> {
  %int0 = torch.constant.int 0
  %int32 = torch.constant.int 32
  %0 = torch.aten.size.int %x, %int0 : !torch.vtensor<[?,4,8],f32>, !torch.int -> !torch.int
  %1 = torch.prim.ListConstruct %0, %int32 : (!torch.int, !torch.int) -> !torch.list<int>
  %2 = torch.aten.view %x, %1 : !torch.vtensor<[?,4,8],f32>, !torch.list<int> -> !torch.vtensor<[?,32],f32>
  return %2 : !torch.vtensor<[?,32],f32>
}
