// RUN: kiln-opt %s --kiln-externalize-params | filecheck %s
// RUN: env KILN_EXTERNAL_PARAMS_MIN_BYTES=16 kiln-opt %s --kiln-externalize-params | filecheck %s --check-prefix=LOW

// A 4 MiB weight becomes a data-less resource named after it; the small bias stays a param.
// CHECK-LABEL: func.func @large_weight
//       CHECK:   %[[W:.+]] = torch.vtensor.literal(dense_resource<"kiln.param:fc.weight"> : tensor<1024x1024xf32>) : !torch.vtensor<[1024,1024],f32>
//       CHECK:   %[[B:.+]] = "kiln.param"() {qualname = "fc.bias"}
//       CHECK:   torch.aten.linear %{{.+}}, %[[W]], %[[B]]
//   CHECK-NOT:   dialect_resources
// LOW-LABEL: func.func @large_weight
//       LOW:   dense_resource<"kiln.param:fc.bias"> : tensor<1024xf32>
func.func @large_weight(%x: !torch.vtensor<[4,1024],f32>) -> !torch.vtensor<[4,1024],f32> {
  %w = "kiln.param"() {qualname = "fc.weight"} : () -> !torch.vtensor<[1024,1024],f32>
  %b = "kiln.param"() {qualname = "fc.bias"} : () -> !torch.vtensor<[1024],f32>
  %y = torch.aten.linear %x, %w, %b : !torch.vtensor<[4,1024],f32>, !torch.vtensor<[1024,1024],f32>, !torch.vtensor<[1024],f32> -> !torch.vtensor<[4,1024],f32>
  return %y : !torch.vtensor<[4,1024],f32>
}

// Integer weights get signless builtin element types, like kiln-inline-params gives them.
// CHECK-LABEL: func.func @int_table
//       CHECK:   torch.vtensor.literal(dense_resource<"kiln.param:table"> : tensor<512x512xi64>) : !torch.vtensor<[512,512],si64>
func.func @int_table() -> !torch.vtensor<[512,512],si64> {
  %t = "kiln.param"() {qualname = "table"} : () -> !torch.vtensor<[512,512],si64>
  return %t : !torch.vtensor<[512,512],si64>
}

// Bool masks are never externalized (IREE packs i1 differently from torch): left alone.
// CHECK-LABEL: func.func @bool_mask
//       CHECK:   "kiln.param"() {qualname = "mask"}
//   CHECK-NOT:   dense_resource
// LOW-LABEL: func.func @bool_mask
//       LOW:   "kiln.param"() {qualname = "mask"}
func.func @bool_mask() -> !torch.vtensor<[2048,2048],i1> {
  %m = "kiln.param"() {qualname = "mask"} : () -> !torch.vtensor<[2048,2048],i1>
  return %m : !torch.vtensor<[2048,2048],i1>
}
