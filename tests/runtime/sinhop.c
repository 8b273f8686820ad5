/* A custom TFLite op "Sinh" (float32, elementwise) for tfedge's custom-op tests.
 *
 * The backends' InterpreterWithCustomOps calls a registerer with the address of their
 * tflite::MutableOpResolver: by symbol name (looked up with dlsym) or as a Python
 * function given that address. The registerer adds the op with the resolver's own
 * MutableOpResolver::AddCustom, found at run time in the library the resolver's class
 * comes from (the one its vtable lies in: the backend's interpreter wrapper), as the
 * TFLite headers and libraries are not installed here to link against. The few C types needed are declared below, following
 * tensorflow/lite/core/c/common.h (TF 2.14): only their leading fields, which upstream
 * never reorders, are read.
 *
 * Exports:
 *   TfedgeTestRegisterSinh(void* resolver)  the registerer (by name or by function)
 *   tfedge_test_sinh_status(void)           0 before a registration, 1 after one that
 *                                           worked, -1 if AddCustom was not found
 *   tfedge_test_sinh_invocations(void)      how many times the kernel ran
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;
typedef enum { kTfLiteFloat32 = 1 } TfLiteType;

typedef struct TfLiteIntArray {
  int size;
  int data[];
} TfLiteIntArray;

/* The leading fields of TfLiteTensor (common.h); the rest is never touched. */
typedef struct TfLiteTensor {
  TfLiteType type;
  float* data; /* TfLitePtrUnion */
  TfLiteIntArray* dims;
  float scale;    /* TfLiteQuantizationParams */
  int32_t zero_point;
  int allocation_type;
  size_t bytes;
} TfLiteTensor;

typedef struct TfLiteNode TfLiteNode;

/* The leading fields of TfLiteContext. */
typedef struct TfLiteContext {
  size_t tensors_size;
  void* get_execution_plan;
  void* tensors;
  void* impl_;
  TfLiteStatus (*ResizeTensor)(struct TfLiteContext*, TfLiteTensor*, TfLiteIntArray*);
} TfLiteContext;

/* TfLiteRegistration of TF 2.14, with room for fields later releases append (zeros). */
typedef struct TfLiteRegistration {
  void* (*init)(TfLiteContext*, const char*, size_t);
  void (*free)(TfLiteContext*, void*);
  TfLiteStatus (*prepare)(TfLiteContext*, TfLiteNode*);
  TfLiteStatus (*invoke)(TfLiteContext*, TfLiteNode*);
  const char* (*profiling_string)(const TfLiteContext*, const TfLiteNode*);
  int32_t builtin_code;
  const char* custom_name;
  int version;
  void* registration_external;
  void* async_kernel;
  uint64_t inplace_operator;
  char reserved[128];
} TfLiteRegistration;

typedef TfLiteTensor* (*TensorAt)(const TfLiteContext*, const TfLiteNode*, int);
typedef TfLiteIntArray* (*IntArrayCopy)(const TfLiteIntArray*);
typedef void (*AddCustom)(void*, const char*, const TfLiteRegistration*, int);

static TensorAt get_input, get_output;
static IntArrayCopy int_array_copy;
static int status, invocations;

static TfLiteStatus sinh_prepare(TfLiteContext* context, TfLiteNode* node) {
  TfLiteTensor* in = get_input(context, node, 0);
  TfLiteTensor* out = get_output(context, node, 0);
  if (in == NULL || out == NULL || in->type != kTfLiteFloat32) return kTfLiteError;
  return context->ResizeTensor(context, out, int_array_copy(in->dims));
}

static TfLiteStatus sinh_invoke(TfLiteContext* context, TfLiteNode* node) {
  TfLiteTensor* in = get_input(context, node, 0);
  TfLiteTensor* out = get_output(context, node, 0);
  size_t n = in->bytes / sizeof(float);
  for (size_t i = 0; i < n; ++i) out->data[i] = sinhf(in->data[i]);
  ++invocations;
  return kTfLiteOk;
}

/* The backend library the resolver's class comes from: the one its vtable lies in. */
static void* library_of(void* resolver) {
  Dl_info info;
  void* vtable = *(void**)resolver;
  if (dladdr(vtable, &info) == 0 || info.dli_fname == NULL) return NULL;
  return dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
}

int tfedge_test_sinh_status(void) { return status; }
int tfedge_test_sinh_invocations(void) { return invocations; }

void TfedgeTestRegisterSinh(void* resolver) {
  static TfLiteRegistration reg;
  void* lib = library_of(resolver);
  if (lib == NULL) {
    status = -1;
    return;
  }
  AddCustom add = (AddCustom)dlsym(lib, "_ZN6tflite17MutableOpResolver9AddCustomEPKcPK18TfLiteRegistrationi");
  get_input = (TensorAt)dlsym(lib, "_ZN6tflite8GetInputEPK13TfLiteContextPK10TfLiteNodei");
  get_output = (TensorAt)dlsym(lib, "_ZN6tflite9GetOutputEP13TfLiteContextPK10TfLiteNodei");
  int_array_copy = (IntArrayCopy)dlsym(lib, "TfLiteIntArrayCopy");
  if (add == NULL || get_input == NULL || get_output == NULL || int_array_copy == NULL) {
    status = -1;
    return;
  }
  memset(&reg, 0, sizeof reg);
  reg.prepare = sinh_prepare;
  reg.invoke = sinh_invoke;
  reg.builtin_code = 32; /* BuiltinOperator_CUSTOM */
  add(resolver, "Sinh", &reg, 1);
  status = 1;
}
