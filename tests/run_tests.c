/*
 * The one test runner: every Check suite of tests/unit and tests/integration,
 * in a single SRunner so `make test` ends with one summary.
 *
 * CK_RUN_SUITE / CK_RUN_CASE (Check's own variables) pick a subset. Built with
 * -DSINGLE_SUITE=suite_x it runs just that suite, so one module's tests can be
 * compiled and run on their own while the rest of the tree is being written.
 */
#include <check.h>
#include <stdlib.h>

#ifdef SINGLE_SUITE
Suite *SINGLE_SUITE(void);
static Suite *(*const drover_suites[])(void) = { SINGLE_SUITE, 0 };
#else
extern Suite *(*const drover_suites[])(void);
#endif

int main(void)
{
    SRunner *sr = srunner_create(NULL);
    for (size_t i = 0; drover_suites[i]; i++)
        srunner_add_suite(sr, drover_suites[i]());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
