/* Status names and the thread-local last-error message. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum { KLC_ERROR_CAPACITY = 2048 };
static _Thread_local char last_error[KLC_ERROR_CAPACITY];

const char *klc_status_str(int status) {
    switch (status) {
    case KLC_OK:
        return "KLC_OK";
    case KLC_ERR_INVALID_ARGUMENT:
        return "KLC_ERR_INVALID_ARGUMENT";
    case KLC_ERR_OUT_OF_MEMORY:
        return "KLC_ERR_OUT_OF_MEMORY";
    case KLC_ERR_IO:
        return "KLC_ERR_IO";
    case KLC_ERR_FORMAT:
        return "KLC_ERR_FORMAT";
    case KLC_ERR_UNSUPPORTED:
        return "KLC_ERR_UNSUPPORTED";
    case KLC_ERR_STATE:
        return "KLC_ERR_STATE";
    case KLC_ERR_CALLBACK:
        return "KLC_ERR_CALLBACK";
    case KLC_ERR_NUMERIC:
        return "KLC_ERR_NUMERIC";
    case KLC_ERR_CONFIG:
        return "KLC_ERR_CONFIG";
    case KLC_ERR_NOT_FOUND:
        return "KLC_ERR_NOT_FOUND";
    case KLC_ERR_INTERNAL:
        return "KLC_ERR_INTERNAL";
    default:
        return "KLC_ERR_UNKNOWN";
    }
}

const char *klc_last_error(void) {
    return last_error;
}

void klc_clear_error(void) {
    last_error[0] = '\0';
}

int klc_fail(int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}

int klc_fail_context(int status, const char *fmt, ...) {
    char prefix[KLC_ERROR_CAPACITY];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    size_t plen = strnlen(prefix, sizeof prefix - 1), elen = strlen(last_error);
    if (plen + elen >= sizeof last_error) elen = sizeof last_error - 1 - plen;
    memmove(last_error + plen, last_error, elen);
    memcpy(last_error, prefix, plen);
    last_error[plen + elen] = '\0';
    return status;
}
