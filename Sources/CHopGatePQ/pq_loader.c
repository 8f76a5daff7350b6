#include "CHopGatePQ.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

// One pointer per libpq function HopGate calls, filled once by load().
#define LIBPQ_FUNCTIONS(X)                                                                                             \
    X(PGconn *, PQconnectdb, (const char *))                                                                           \
    X(ConnStatusType, PQstatus, (const PGconn *))                                                                      \
    X(char *, PQerrorMessage, (const PGconn *))                                                                        \
    X(void, PQfinish, (PGconn *))                                                                                      \
    X(PQnoticeProcessor, PQsetNoticeProcessor, (PGconn *, PQnoticeProcessor, void *))                                  \
    X(PGresult *, PQexecParams,                                                                                        \
      (PGconn *, const char *, int, const Oid *, const char *const *, const int *, const int *, int))                  \
    X(ExecStatusType, PQresultStatus, (const PGresult *))                                                              \
    X(char *, PQresultErrorField, (const PGresult *, int))                                                             \
    X(char *, PQcmdTuples, (PGresult *))                                                                               \
    X(int, PQntuples, (const PGresult *))                                                                              \
    X(int, PQnfields, (const PGresult *))                                                                              \
    X(int, PQgetisnull, (const PGresult *, int, int))                                                                  \
    X(char *, PQgetvalue, (const PGresult *, int, int))                                                                \
    X(void, PQclear, (PGresult *))

#define DECLARE_POINTER(type, name, parameters) static type(*p_##name) parameters;
LIBPQ_FUNCTIONS(DECLARE_POINTER)

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char load_error[512];

static void load(void) {
    void *library = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        snprintf(load_error, sizeof(load_error), "cannot load libpq.so.5 (install libpq5): %s", dlerror());
        return;
    }
#define RESOLVE(type, name, parameters)                                                                                \
    p_##name = (type(*) parameters)dlsym(library, #name);                                                              \
    if (p_##name == NULL) {                                                                                            \
        snprintf(load_error, sizeof(load_error), "libpq.so.5 has no %s", #name);                                       \
        return;                                                                                                        \
    }
    LIBPQ_FUNCTIONS(RESOLVE)
}

int hg_pq_load(char *error, size_t error_capacity) {
    pthread_once(&once, load);
    if (load_error[0] == '\0') return 0;
    snprintf(error, error_capacity, "%s", load_error);
    return -1;
}

// Callers load first: PostgresConnection calls hg_pq_load before any connection exists.
PGconn *hg_PQconnectdb(const char *conninfo) { return p_PQconnectdb(conninfo); }
ConnStatusType hg_PQstatus(const PGconn *conn) { return p_PQstatus(conn); }
char *hg_PQerrorMessage(const PGconn *conn) { return p_PQerrorMessage(conn); }
void hg_PQfinish(PGconn *conn) { p_PQfinish(conn); }
PQnoticeProcessor hg_PQsetNoticeProcessor(PGconn *conn, PQnoticeProcessor proc, void *arg) {
    return p_PQsetNoticeProcessor(conn, proc, arg);
}
PGresult *hg_PQexecParams(PGconn *conn, const char *command, int nParams, const Oid *paramTypes,
                          const char *const *paramValues, const int *paramLengths, const int *paramFormats,
                          int resultFormat) {
    return p_PQexecParams(conn, command, nParams, paramTypes, paramValues, paramLengths, paramFormats, resultFormat);
}
ExecStatusType hg_PQresultStatus(const PGresult *res) { return p_PQresultStatus(res); }
char *hg_PQresultErrorField(const PGresult *res, int fieldcode) { return p_PQresultErrorField(res, fieldcode); }
char *hg_PQcmdTuples(PGresult *res) { return p_PQcmdTuples(res); }
int hg_PQntuples(const PGresult *res) { return p_PQntuples(res); }
int hg_PQnfields(const PGresult *res) { return p_PQnfields(res); }
int hg_PQgetisnull(const PGresult *res, int tup_num, int field_num) { return p_PQgetisnull(res, tup_num, field_num); }
char *hg_PQgetvalue(const PGresult *res, int tup_num, int field_num) { return p_PQgetvalue(res, tup_num, field_num); }
void hg_PQclear(PGresult *res) { p_PQclear(res); }
