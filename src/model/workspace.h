/* Planning and allocation of a model's work buffers. */
#ifndef KLC_MODEL_WORKSPACE_H
#define KLC_MODEL_WORKSPACE_H

#include "model.h"

/* Ensures capacity for (n_seq, max_len, training); grows at most once per call. */
int klc_workspace_ensure(klc_model *m, int32_t n_seq, int32_t max_len, int training);
void klc_workspace_free(klc_model *m);

#endif
