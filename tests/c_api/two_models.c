/* Links two generated models (prefixes alpha and beta) into one program and checks the C API
 * contract of include/<p>.h. Prints "ok" lines, "FAIL: ..." lines, then every output value
 * (for the Python test to compare), and exits 1 if a check failed.
 *   two_models BETA_WEIGHTS_FILE */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alpha.h"
#include "beta.h"

static int failures = 0;
#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            printf("FAIL: %s:%d: %s\n", __FILE__, __LINE__, #cond);        \
            ++failures;                                                    \
        }                                                                  \
    } while (0)

static void print_floats(const char *name, const float *v, size_t n) {
    printf("%s", name);
    for (size_t i = 0; i < n; ++i) printf(" %.9g", v[i]);
    printf("\n");
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    /* --- alpha: metadata ----------------------------------------------------------------- */
    CHECK(alpha_num_inputs() == 2 && alpha_num_outputs() == 2);
    const alpha_tensor_info *x = alpha_input_info(0), *y = alpha_input_info(1);
    CHECK(x && strcmp(x->name, "x") == 0 && x->dtype == ALPHA_FLOAT && x->rank == 2 &&
          x->shape[0] == 2 && x->shape[1] == 3 && x->bytes == 24);
    CHECK(y && strcmp(y->name, "y") == 0 && y->rank == 1 && y->shape[0] == 3 && y->bytes == 12);
    const alpha_tensor_info *o0 = alpha_output_info(0), *o1 = alpha_output_info(1);
    CHECK(o0 && strcmp(o0->name, "prod") == 0 && o0->bytes == 24);
    CHECK(o1 && strcmp(o1->name, "gate/out") == 0 && o1->dtype == ALPHA_FLOAT);
    CHECK(alpha_input_info(-1) == NULL && alpha_input_info(2) == NULL);
    CHECK(alpha_output_info(-1) == NULL && alpha_output_info(2) == NULL);
    CHECK(alpha_workspace_size() > 0);

    /* --- alpha: runs ------------------------------------------------------------------------ */
    float xv[6], yv[3], prod[6], gate[6], prod_ws[6], gate_ws[6], prod_t[6], gate_t[6];
    for (int i = 0; i < 6; ++i) xv[i] = (float)(i - 3) * 0.75f;
    for (int i = 0; i < 3; ++i) yv[i] = 1.5f - (float)i;
    const void *in[2] = {xv, yv};
    void *out[2] = {prod, gate};
    CHECK(alpha_run(in, out) == ALPHA_OK);

    unsigned char *ws = malloc(alpha_workspace_size() + 1);
    void *out_ws[2] = {prod_ws, gate_ws};
    CHECK(alpha_run_ws(ws + 1, in, out_ws) == ALPHA_OK);       /* any alignment is accepted */
    CHECK(memcmp(prod, prod_ws, sizeof prod) == 0 && memcmp(gate, gate_ws, sizeof gate) == 0);

    CHECK(alpha_set_num_threads(0) == ALPHA_ERR_ARGUMENT);
    CHECK(alpha_set_num_threads(4) == ALPHA_OK);
    void *out_t[2] = {prod_t, gate_t};
    CHECK(alpha_run(in, out_t) == ALPHA_OK);
    CHECK(memcmp(prod, prod_t, sizeof prod) == 0 && memcmp(gate, gate_t, sizeof gate) == 0);
    CHECK(alpha_set_num_threads(1) == ALPHA_OK);

    /* --- alpha: NULL handling ---------------------------------------------------------------- */
    const void *in_null[2] = {xv, NULL};
    void *out_null[2] = {prod, NULL};
    CHECK(alpha_run(NULL, out) == ALPHA_ERR_NULL);
    CHECK(alpha_run(in, NULL) == ALPHA_ERR_NULL);
    CHECK(alpha_run(in_null, out) == ALPHA_ERR_NULL);
    CHECK(alpha_run(in, out_null) == ALPHA_ERR_NULL);
    CHECK(alpha_run_ws(NULL, in, out) == ALPHA_ERR_NULL);
    CHECK(alpha_set_weights(NULL, 0) == ALPHA_ERR_NULL);
    CHECK(alpha_load_weights(NULL) == ALPHA_ERR_NULL);
    CHECK(strcmp(alpha_strerror(ALPHA_OK), "success") == 0);
    CHECK(alpha_strerror(ALPHA_ERR_NULL) && strlen(alpha_strerror(ALPHA_ERR_NULL)) > 0);
    CHECK(strcmp(alpha_strerror(12345), "unknown error") == 0);
    CHECK(strcmp(alpha_strerror(-1), "unknown error") == 0);

    /* --- alpha: the checked entry point --------------------------------------------------- */
    float prod_c[6], gate_c[6];
    alpha_input cin[2] = {{xv, sizeof xv, ALPHA_FLOAT}, {yv, sizeof yv, ALPHA_FLOAT}};
    alpha_output cout[2] = {{prod_c, sizeof prod_c, ALPHA_FLOAT}, {gate_c, sizeof gate_c, ALPHA_FLOAT}};
    memset(prod_c, 0, sizeof prod_c);
    CHECK(alpha_run_checked(NULL, cin, 2, cout, 2) == ALPHA_OK);
    CHECK(memcmp(prod, prod_c, sizeof prod) == 0 && memcmp(gate, gate_c, sizeof gate) == 0);
    CHECK(alpha_run_checked(ws + 3, cin, 2, cout, 2) == ALPHA_OK);     /* own workspace */
    CHECK(memcmp(prod, prod_c, sizeof prod) == 0);
    memset(prod_c, 0, sizeof prod_c);
    CHECK(alpha_run_checked(NULL, cin, 1, cout, 2) == ALPHA_ERR_COUNT);
    CHECK(alpha_run_checked(NULL, cin, 2, cout, 3) == ALPHA_ERR_COUNT);
    CHECK(alpha_run_checked(NULL, NULL, 2, cout, 2) == ALPHA_ERR_NULL);
    CHECK(alpha_run_checked(NULL, cin, 2, NULL, 2) == ALPHA_ERR_NULL);
    cin[1].bytes = 8;                                    /* two floats where three are needed */
    CHECK(alpha_run_checked(NULL, cin, 2, cout, 2) == ALPHA_ERR_SIZE);
    cin[1].bytes = sizeof yv;
    cin[0].dtype = ALPHA_DOUBLE;                         /* doubles where floats are needed */
    CHECK(alpha_run_checked(NULL, cin, 2, cout, 2) == ALPHA_ERR_DTYPE);
    cin[0].dtype = ALPHA_FLOAT;
    cout[1].bytes = 4 * sizeof gate_c;                   /* a larger output is still wrong */
    CHECK(alpha_run_checked(NULL, cin, 2, cout, 2) == ALPHA_ERR_SIZE);
    cout[1].bytes = sizeof gate_c;
    cout[0].data = NULL;
    CHECK(alpha_run_checked(NULL, cin, 2, cout, 2) == ALPHA_ERR_NULL);
    cout[0].data = prod_c;
    for (int i = 0; i < 6; ++i) CHECK(prod_c[i] == 0.0f);   /* refused calls wrote nothing */
    CHECK(strstr(alpha_strerror(ALPHA_ERR_SIZE), "size") != NULL);
    CHECK(strstr(alpha_strerror(ALPHA_ERR_DTYPE), "type") != NULL);

    /* --- beta: weights loaded from a file at run time ---------------------------------------- */
    CHECK(beta_num_inputs() == 1 && beta_num_outputs() == 1);
    CHECK(strcmp(beta_input_info(0)->name, "x") == 0);            /* same names, other model */
    CHECK(beta_weights_size() > 0);
    float bx[8], by[8];
    for (int i = 0; i < 8; ++i) bx[i] = (float)i * 0.5f - 2.0f;
    const void *bin[1] = {bx};
    void *bout[1] = {by};
    CHECK(beta_run(bin, bout) == BETA_ERR_NO_WEIGHTS);
    CHECK(strstr(beta_strerror(BETA_ERR_NO_WEIGHTS), "not loaded") != NULL);
    CHECK(beta_load_weights("/nonexistent/beta.bin") == BETA_ERR_WEIGHTS);
    static unsigned char small_blob[3];
    CHECK(beta_set_weights(small_blob, sizeof small_blob) == BETA_ERR_WEIGHTS);
    CHECK(beta_run(bin, bout) == BETA_ERR_NO_WEIGHTS);
    CHECK(beta_load_weights(argv[1]) == BETA_OK);
    CHECK(beta_run(bin, bout) == BETA_OK);
    unsigned char *bws = malloc(beta_workspace_size());
    float by_ws[8];
    void *bout_ws[1] = {by_ws};
    CHECK(beta_run_ws(bws, bin, bout_ws) == BETA_OK && memcmp(by, by_ws, sizeof by) == 0);

    /* alpha is unaffected by beta, and the other way round */
    CHECK(alpha_run(in, out_ws) == ALPHA_OK && memcmp(prod, prod_ws, sizeof prod) == 0);

    print_floats("alpha.prod", prod, 6);
    print_floats("alpha.gate", gate, 6);
    print_floats("beta.y", by, 8);
    free(ws);
    free(bws);
    printf("%s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
