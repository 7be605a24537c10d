/* A program built against the installed klc, as a user's would be. */
#include <klc.h>
#include <stdio.h>

int main(void) {
    klc_model_options o;
    klc_model_options_init(&o, KLC_MODEL_OPTIONS_VERSION);
    o.n_layer = 1;
    o.n_embd = 16;
    o.n_head = 2;
    o.vocab_size = 20;
    o.n_ctx = 8;
    klc_model *m;
    if (klc_model_create(&o, &m) != KLC_OK) {
        fprintf(stderr, "%s\n", klc_last_error());
        return 1;
    }
    printf("klc %s (header %s), %d tensors\n", klc_version_string(), KLC_VERSION_STRING,
           klc_model_num_tensors(m));
    klc_model_destroy(m);
    return klc_version() == KLC_VERSION ? 0 : 1;
}
