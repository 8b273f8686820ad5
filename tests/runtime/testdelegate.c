/* A tiny TFLite external delegate for tfedge's tests.
 *
 * It is loaded through the backends' real load_delegate() (the external delegate
 * plugin ABI), so the fallback paths are exercised without mocks. The TFLite headers
 * are not installed here, so the few types it needs are declared below; they follow
 * TfLiteDelegate in tensorflow/lite/core/c/common.h (TF 2.14 / LiteRT 2.3), whose
 * field order is "semi-ABI stable" (fields are only ever appended).
 *
 * Options (all optional):
 *   mode=accept_none   Prepare returns kTfLiteOk and replaces no node (default):
 *                      the whole model stays on the builtin CPU kernels.
 *   mode=fail_prepare  Prepare returns kTfLiteError: applying the delegate fails.
 *   mode=fail_create   tflite_plugin_create_delegate reports an error, returns NULL.
 *   record=PATH        Append every option received, one "key=value" line each,
 *                      followed by a line "--", to PATH. Without it the path comes
 *                      from $TFEDGE_TEST_DELEGATE_RECORD, if set.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;
typedef struct TfLiteContext TfLiteContext; /* opaque: never dereferenced here */
typedef struct TfLiteTensor TfLiteTensor;
typedef int TfLiteBufferHandle;

typedef struct TfLiteDelegate {
  void* data_;
  TfLiteStatus (*Prepare)(TfLiteContext* context, struct TfLiteDelegate* delegate);
  TfLiteStatus (*CopyFromBufferHandle)(TfLiteContext* context, struct TfLiteDelegate* delegate,
                                       TfLiteBufferHandle buffer_handle, TfLiteTensor* tensor);
  TfLiteStatus (*CopyToBufferHandle)(TfLiteContext* context, struct TfLiteDelegate* delegate,
                                     TfLiteBufferHandle buffer_handle, TfLiteTensor* tensor);
  void (*FreeBufferHandle)(TfLiteContext* context, struct TfLiteDelegate* delegate,
                           TfLiteBufferHandle* handle);
  int64_t flags;
  void* opaque_delegate_builder;
} TfLiteDelegate;

enum { MODE_ACCEPT_NONE = 0, MODE_FAIL_PREPARE = 1 };

static TfLiteStatus accept_none(TfLiteContext* context, TfLiteDelegate* delegate) {
  (void)context;
  (void)delegate;
  return kTfLiteOk;
}

static TfLiteStatus fail_prepare(TfLiteContext* context, TfLiteDelegate* delegate) {
  (void)context;
  (void)delegate;
  return kTfLiteError;
}

TfLiteDelegate* tflite_plugin_create_delegate(char** options_keys, char** options_values,
                                              size_t num_options,
                                              void (*report_error)(const char*)) {
  /* The Python wrappers declare the count as a C int; read only its low 32 bits. */
  int count = (int)(unsigned int)num_options;
  const char* record = getenv("TFEDGE_TEST_DELEGATE_RECORD");
  const char* mode = "accept_none";
  for (int i = 0; i < count; i++) {
    if (strcmp(options_keys[i], "record") == 0) record = options_values[i];
    if (strcmp(options_keys[i], "mode") == 0) mode = options_values[i];
  }
  if (record != NULL && record[0] != '\0') {
    FILE* f = fopen(record, "a");
    if (f != NULL) {
      for (int i = 0; i < count; i++) fprintf(f, "%s=%s\n", options_keys[i], options_values[i]);
      fputs("--\n", f);
      fclose(f);
    }
  }
  if (strcmp(mode, "fail_create") == 0) {
    if (report_error != NULL) report_error("testdelegate: asked to fail at create (mode=fail_create)");
    return NULL;
  }
  if (strcmp(mode, "accept_none") != 0 && strcmp(mode, "fail_prepare") != 0) {
    if (report_error != NULL) report_error("testdelegate: unknown mode");
    return NULL;
  }
  TfLiteDelegate* delegate = (TfLiteDelegate*)calloc(1, sizeof(TfLiteDelegate));
  if (delegate == NULL) return NULL;
  delegate->Prepare = strcmp(mode, "fail_prepare") == 0 ? fail_prepare : accept_none;
  return delegate;
}

void tflite_plugin_destroy_delegate(TfLiteDelegate* delegate) { free(delegate); }
