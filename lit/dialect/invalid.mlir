// RUN: not kiln-opt %s --split-input-file 2>&1 | filecheck %s

func.func @param_without_name() -> !torch.vtensor<[4],f32> {
  // CHECK: {{.*}}invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: 'kiln.param' has an empty 'qualname'
  %0 = "kiln.param"() {qualname = ""} : () -> !torch.vtensor<[4],f32>
  return %0 : !torch.vtensor<[4],f32>
}

// -----

func.func @param_of_an_int() -> !torch.int {
  // CHECK: invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: 'kiln.param' must produce a !torch.vtensor, not !torch.int
  %0 = "kiln.param"() {qualname = "n"} : () -> !torch.int
  return %0 : !torch.int
}

// -----

func.func @if_on_a_tensor(%x: !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32> {
  // CHECK: invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: 'kiln.if' takes one !torch.bool condition, got (!torch.vtensor<[4],f32>)
  %0 = "kiln.if"(%x) ({
    "kiln.yield"(%x) : (!torch.vtensor<[4],f32>) -> ()
  }, {
    "kiln.yield"(%x) : (!torch.vtensor<[4],f32>) -> ()
  }) : (!torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32>
  return %0 : !torch.vtensor<[4],f32>
}

// -----

func.func @if_branches_disagree(%c: !torch.bool, %x: !torch.vtensor<[4],f32>, %n: !torch.int) -> !torch.vtensor<[4],f32> {
  // CHECK: invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: 'kiln.if' else region yields (!torch.int) but (!torch.vtensor<[4],f32>) is expected
  %0 = "kiln.if"(%c) ({
    "kiln.yield"(%x) : (!torch.vtensor<[4],f32>) -> ()
  }, {
    "kiln.yield"(%n) : (!torch.int) -> ()
  }) : (!torch.bool) -> !torch.vtensor<[4],f32>
  return %0 : !torch.vtensor<[4],f32>
}

// -----

func.func @loop_without_condition(%n: !torch.int, %x: !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32> {
  // CHECK: invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: 'kiln.loop' takes a !torch.int trip count and a !torch.bool condition first, got (!torch.int, !torch.vtensor<[4],f32>)
  %0 = "kiln.loop"(%n, %x) ({
  ^bb0(%i: !torch.int, %h: !torch.vtensor<[4],f32>):
    "kiln.yield"(%h) : (!torch.vtensor<[4],f32>) -> ()
  }) : (!torch.int, !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32>
  return %0 : !torch.vtensor<[4],f32>
}

// -----

func.func @loop_body_drops_the_condition(%n: !torch.int, %c: !torch.bool, %x: !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32> {
  // CHECK: invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: 'kiln.loop' body region yields (!torch.vtensor<[4],f32>) but (!torch.bool, !torch.vtensor<[4],f32>) is expected
  %0 = "kiln.loop"(%n, %c, %x) ({
  ^bb0(%i: !torch.int, %h: !torch.vtensor<[4],f32>):
    "kiln.yield"(%h) : (!torch.vtensor<[4],f32>) -> ()
  }) : (!torch.int, !torch.bool, !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32>
  return %0 : !torch.vtensor<[4],f32>
}

// -----

func.func @loop_body_without_index(%n: !torch.int, %c: !torch.bool, %x: !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32> {
  // CHECK: invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: 'kiln.loop' body takes (!torch.vtensor<[4],f32>) but (!torch.int, !torch.vtensor<[4],f32>) is expected
  %0 = "kiln.loop"(%n, %c, %x) ({
  ^bb0(%h: !torch.vtensor<[4],f32>):
    "kiln.yield"(%c, %h) : (!torch.bool, !torch.vtensor<[4],f32>) -> ()
  }) : (!torch.int, !torch.bool, !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32>
  return %0 : !torch.vtensor<[4],f32>
}

// -----

func.func @fused_reads_from_above(%x: !torch.vtensor<[4],f32>, %y: !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32> {
  // CHECK: invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: 'kiln.fused' body reads %arg1 from outside; pass it in as an input
  %0 = "kiln.fused"(%x) ({
  ^bb0(%a: !torch.vtensor<[4],f32>):
    %int1 = torch.constant.int 1
    %s = torch.aten.add.Tensor %a, %y, %int1 : !torch.vtensor<[4],f32>, !torch.vtensor<[4],f32>, !torch.int -> !torch.vtensor<[4],f32>
    "kiln.yield"(%s) : (!torch.vtensor<[4],f32>) -> ()
  }) : (!torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32>
  return %0 : !torch.vtensor<[4],f32>
}

// -----

func.func @fused_arguments_mismatch(%x: !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32> {
  // CHECK: invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: 'kiln.fused' body takes () but its inputs are (!torch.vtensor<[4],f32>)
  %0 = "kiln.fused"(%x) ({
    "kiln.yield"(%x) : (!torch.vtensor<[4],f32>) -> ()
  }) : (!torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32>
  return %0 : !torch.vtensor<[4],f32>
}

// -----

func.func @attention_feature_sizes_differ(%q: !torch.vtensor<[2,4,8],f32>, %k: !torch.vtensor<[2,4,16],f32>) -> !torch.vtensor<[2,4,16],f32> {
  // CHECK: invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: 'kiln.attention' query feature size 8 differs from key feature size 16
  %0 = "kiln.attention"(%q, %k, %k) {scale = 1.0 : f64} : (!torch.vtensor<[2,4,8],f32>, !torch.vtensor<[2,4,16],f32>, !torch.vtensor<[2,4,16],f32>) -> !torch.vtensor<[2,4,16],f32>
  return %0 : !torch.vtensor<[2,4,16],f32>
}

// -----

func.func @attention_without_scale(%q: !torch.vtensor<[2,4,8],f32>) -> !torch.vtensor<[2,4,8],f32> {
  // CHECK: invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: 'kiln.attention' needs a float attribute 'scale'
  %0 = "kiln.attention"(%q, %q, %q) : (!torch.vtensor<[2,4,8],f32>, !torch.vtensor<[2,4,8],f32>, !torch.vtensor<[2,4,8],f32>) -> !torch.vtensor<[2,4,8],f32>
  return %0 : !torch.vtensor<[2,4,8],f32>
}

// -----

func.func @yield_outside_kiln(%x: !torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32> {
  // CHECK: invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: 'kiln.yield' must end a region of a kiln op, not of func.func
  "kiln.yield"(%x) : (!torch.vtensor<[4],f32>) -> ()
  return %x : !torch.vtensor<[4],f32>
}

// -----

func.func @unknown_kiln_op() {
  // CHECK: invalid.mlir:[[# @LINE + 1]]:{{[0-9]+}}: error: 'kiln.frobnicate' is not a kiln op
  "kiln.frobnicate"() : () -> ()
  return
}
