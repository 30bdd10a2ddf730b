/* Unit tests for common/config.c: defaults, ranges, required settings, masked errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "err.h"

static const char *str_value;
static long int_value;
static const struct vap_config_item table[] = {
    {"VAPT_STR", VAP_CONFIG_STRING, "dflt", 0, 0, 0, &str_value, NULL},
    {"VAPT_INT", VAP_CONFIG_INT, "8", 1, 10, 0, &int_value, NULL},
};

static int reset(void **state)
{
    (void)state;
    unsetenv("VAPT_STR");
    unsetenv("VAPT_INT");
    unsetenv("VAPT_SECRET");
    unsetenv("VAPT_STR_AUTH");
    unsetenv("VAPT_INT_VOICE2");
    unsetenv("VAP_SERVICE_NAME");
    return 0;
}

static void test_defaults_apply_when_unset(void **state)
{
    char err[128];
    (void)state;
    assert_int_equal(vap_config_load(table, 2, err, sizeof(err)), 0);
    assert_string_equal(str_value, "dflt");
    assert_int_equal(int_value, 8);
}

static void test_environment_overrides_defaults(void **state)
{
    char err[128];
    (void)state;
    setenv("VAPT_STR", "given", 1);
    setenv("VAPT_INT", "10", 1);
    assert_int_equal(vap_config_load(table, 2, err, sizeof(err)), 0);
    assert_string_equal(str_value, "given");
    assert_int_equal(int_value, 10);
}

static void test_a_service_setting_wins_for_that_service_only(void **state)
{
    char err[128];
    (void)state;
    setenv("VAPT_STR", "shared", 1);
    setenv("VAPT_STR_AUTH", "auth's own", 1);
    setenv("VAPT_INT_VOICE2", "3", 1);
    setenv("VAP_SERVICE_NAME", "auth", 1);
    assert_int_equal(vap_config_load(table, 2, err, sizeof(err)), 0);
    assert_string_equal(str_value, "auth's own");
    assert_int_equal(int_value, 8);
    setenv("VAP_SERVICE_NAME", "voice2", 1);
    assert_int_equal(vap_config_load(table, 2, err, sizeof(err)), 0);
    assert_string_equal(str_value, "shared");
    assert_int_equal(int_value, 3);
    setenv("VAPT_INT_VOICE2", "", 1); /* empty: not set */
    assert_int_equal(vap_config_load(table, 2, err, sizeof(err)), 0);
    assert_int_equal(int_value, 8);
    unsetenv("VAP_SERVICE_NAME");
    assert_string_equal(vap_config_getenv("VAPT_STR"), "shared");
    assert_null(vap_config_getenv("VAPT_INT"));
}

static void test_out_of_range_names_setting_and_value(void **state)
{
    char err[128];
    (void)state;
    setenv("VAPT_INT", "11", 1);
    assert_int_equal(vap_config_load(table, 2, err, sizeof(err)), VAP_EINVAL);
    assert_non_null(strstr(err, "VAPT_INT"));
    assert_non_null(strstr(err, "11"));
}

static void test_not_an_integer_is_refused(void **state)
{
    char err[128];
    (void)state;
    setenv("VAPT_INT", "8x", 1);
    assert_int_equal(vap_config_load(table, 2, err, sizeof(err)), VAP_EINVAL);
    assert_non_null(strstr(err, "not an integer"));
}

static void test_missing_required_secret_is_named_not_echoed(void **state)
{
    static const char *secret;
    const struct vap_config_item t[] = {
        {"VAPT_SECRET", VAP_CONFIG_STRING, NULL, 0, 0, 1, &secret, "needed"},
    };
    static long n;
    const struct vap_config_item ti[] = {
        {"VAPT_SECRET", VAP_CONFIG_INT, NULL, 0, 10, 1, &n, NULL},
    };
    char err[128];
    (void)state;
    assert_int_equal(vap_config_load(t, 1, err, sizeof(err)), VAP_EINVAL);
    assert_non_null(strstr(err, "VAPT_SECRET"));
    setenv("VAPT_SECRET", "hunter2x", 1);
    assert_int_equal(vap_config_load(ti, 1, err, sizeof(err)), VAP_EINVAL);
    assert_null(strstr(err, "hunter2x"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults_apply_when_unset, reset),
        cmocka_unit_test_setup(test_environment_overrides_defaults, reset),
        cmocka_unit_test_setup(test_a_service_setting_wins_for_that_service_only, reset),
        cmocka_unit_test_setup(test_out_of_range_names_setting_and_value, reset),
        cmocka_unit_test_setup(test_not_an_integer_is_refused, reset),
        cmocka_unit_test_setup(test_missing_required_secret_is_named_not_echoed, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
