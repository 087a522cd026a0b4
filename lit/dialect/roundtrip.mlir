// RUN: kiln-opt %s | kiln-opt - | filecheck %s

// Every kiln op parses, verifies and prints back in generic form.
// CHECK-LABEL: func.func @all_ops
//       CHECK:   %[[W:.+]] = "kiln.param"() {qualname = "fc.weight"} : () -> !torch.vtensor<[4],f32>
//       CHECK:   %[[I:.+]] = "kiln.if"(%{{.+}}) ({
//       CHECK:     "kiln.yield"(%[[W]])
//       CHECK:   }, {
//       CHECK:   "kiln.loop"(%{{.+}}, %{{.+}}, %[[I]]) ({
//       CHECK:   ^bb0(%{{.+}}: !torch.int, %{{.+}}: !torch.vtensor<[4],f32>):
//       CHECK:   "kiln.fused"
//       CHECK:     torch.aten.tanh
//       CHECK:   "kiln.attention"(%{{.+}}, %{{.+}}, %{{.+}}) {scale = 1.250000e-01 : f64}
func.func @all_ops(%x: !torch.vtensor<[4],f32>, %c: !torch.bool, %n: !torch.int, %q: !torch.vtensor<[1,2,4,8],f32>) -> (!torch.vtensor<[4],f32>, !torch.vtensor<[1,2,4,8],f32>) {
  %w = "kiln.param"() {qualname = "fc.weight"} : () -> !torch.vtensor<[4],f32>
  %r = "kiln.if"(%c) ({
    "kiln.yield"(%w) : (!torch.vtensor<[4],f32>) -> ()
  }, {
    "kiln.yield"(%x) : (!torch.vtensor<[4],f32>) -> ()
  }) : (!torch.bool) -> !torch.vtensor<[4],f32>
  %l = "kiln.loop"(%n, %c, %r) ({
  ^bb0(%i: !torch.int, %h: !torch.vtensor<[4],f32>):
    "kiln.yield"(%c, %h) : (!torch.bool, !torch.vtensor<[4],f32>) -> ()
  }) : (!torch.int, !torch.bool, !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32>
  %f = "kiln.fused"(%l) ({
  ^bb0(%a: !torch.vtensor<[4],f32>):
    %t = torch.aten.tanh %a : !torch.vtensor<[4],f32> -> !torch.vtensor<[4],f32>
    "kiln.yield"(%t) : (!torch.vtensor<[4],f32>) -> ()
  }) : (!torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32>
  %o = "kiln.attention"(%q, %q, %q) {scale = 0.125 : f64} : (!torch.vtensor<[1,2,4,8],f32>, !torch.vtensor<[1,2,4,8],f32>, !torch.vtensor<[1,2,4,8],f32>) -> !torch.vtensor<[1,2,4,8],f32>
  return %f, %o : !torch.vtensor<[4],f32>, !torch.vtensor<[1,2,4,8],f32>
}
