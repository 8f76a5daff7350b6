#ifndef CHOPGATEPQ_H
#define CHOPGATEPQ_H

// libpq, loaded on first use rather than linked: only an edge on PostgreSQL needs it, and linking it maps libpq and
// its dependencies (Kerberos, LDAP, GnuTLS: about 3 MB resident) into every process, a client included.
// The header gives the types; the functions below call libpq through pointers that hg_pq_load fills.
#include <postgresql/libpq-fe.h>
#include <stddef.h>

/// Loads libpq.so.5 once per process. Returns 0, or -1 with the reason in `error`.
int hg_pq_load(char *error, size_t error_capacity);

PGconn *hg_PQconnectdb(const char *conninfo);
ConnStatusType hg_PQstatus(const PGconn *conn);
char *hg_PQerrorMessage(const PGconn *conn);
void hg_PQfinish(PGconn *conn);
PQnoticeProcessor hg_PQsetNoticeProcessor(PGconn *conn, PQnoticeProcessor proc, void *arg);
PGresult *hg_PQexecParams(PGconn *conn, const char *command, int nParams, const Oid *paramTypes,
                          const char *const *paramValues, const int *paramLengths, const int *paramFormats,
                          int resultFormat);
ExecStatusType hg_PQresultStatus(const PGresult *res);
char *hg_PQresultErrorField(const PGresult *res, int fieldcode);
char *hg_PQcmdTuples(PGresult *res);
int hg_PQntuples(const PGresult *res);
int hg_PQnfields(const PGresult *res);
int hg_PQgetisnull(const PGresult *res, int tup_num, int field_num);
char *hg_PQgetvalue(const PGresult *res, int tup_num, int field_num);
void hg_PQclear(PGresult *res);

#endif
