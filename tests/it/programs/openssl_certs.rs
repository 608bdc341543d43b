//! OpenSSL-made certificates for the interop tests (interop/openssl.rs,
//! interop/gnutls.rs), following the recipe in `shared/interop.md`.

use std::process::Command;

use crate::programs::{Proc, TempDir};

/// Runs a short command to completion and returns its stdout, failing the
/// test with its output if it fails.
pub fn run(name: &str, cmd: &mut Command) -> String {
    let mut proc = Proc::spawn(name, cmd);
    proc.close_stdin();
    let status = proc.wait();
    assert!(status.success(), "{name} failed with {status}\n{}", proc.output());
    proc.stdout.text()
}

pub fn openssl(args: &[&str]) -> Command {
    let mut cmd = Command::new("openssl");
    cmd.args(args);
    cmd
}

/// An Ed25519 CA and a server certificate for localhost and 127.0.0.1 made
/// by OpenSSL (the interop.md recipe): `ca.pem`, `server.pem`, `server.key`.
pub fn openssl_certificates(dir: &TempDir) {
    let d = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    run("openssl genpkey", &mut openssl(&["genpkey", "-algorithm", "ed25519", "-out", &d("ca.key")]));
    run(
        "openssl req (CA)",
        &mut openssl(&[
            "req",
            "-x509",
            "-new",
            "-key",
            &d("ca.key"),
            "-subj",
            "/CN=test CA",
            "-days",
            "3650",
            "-out",
            &d("ca.pem"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]),
    );
    run("openssl genpkey", &mut openssl(&["genpkey", "-algorithm", "ed25519", "-out", &d("server.key")]));
    run(
        "openssl req (server)",
        &mut openssl(&[
            "req",
            "-new",
            "-key",
            &d("server.key"),
            "-subj",
            "/CN=localhost",
            "-out",
            &d("server.csr"),
        ]),
    );
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n\
         subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    run(
        "openssl x509 (sign)",
        &mut openssl(&[
            "x509",
            "-req",
            "-in",
            &d("server.csr"),
            "-CA",
            &d("ca.pem"),
            "-CAkey",
            &d("ca.key"),
            "-CAcreateserial",
            "-days",
            "825",
            "-extfile",
            &d("server.ext"),
            "-out",
            &d("server.pem"),
        ]),
    );
}
