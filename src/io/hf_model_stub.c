/* TEMPORARY: placeholders until the Hugging Face reader and writer land. */
#include "core/internal.h"

int klc_model_load(const char *dir, const klc_allocator *allocator, klc_model **out) {
    if (out) *out = NULL;
    return klc_fail(KLC_ERR_UNSUPPORTED, "klc_model_load: not implemented yet");
}
int klc_model_save(const klc_model *model, const char *dir) {
    return klc_fail(KLC_ERR_UNSUPPORTED, "klc_model_save: not implemented yet");
}
