use std::path::Path;

use super::{Cluster, ClusterError};

fn parse(text: &str, processes: usize, process: usize) -> Result<Cluster, ClusterError> {
    Cluster::parse(text, Path::new("hosts.txt"), processes, process)
}

#[test]
fn a_hostfile_lists_one_address_a_line_skipping_blanks_and_comments() {
    let text = "# the ward's two machines\n10.0.0.1:2101\n\n10.0.0.2:2101  # the second\n";
    let cluster = parse(text, 2, 1).expect("parses");
    assert_eq!(cluster.addresses, ["10.0.0.1:2101", "10.0.0.2:2101"]);
    assert_eq!(cluster.processes(), 2);
    assert_eq!(cluster.workers(3), 3..6);
}

#[test]
fn a_bad_line_is_named_with_its_number() {
    let error = parse("127.0.0.1:2101\nlocalhost\n", 2, 0).unwrap_err();
    assert_eq!(
        error.to_string(),
        "hosts.txt:2: \"localhost\" is not host:port"
    );
    let error = parse("127.0.0.1:2101\n127.0.0.1:99999\n", 2, 0).unwrap_err();
    assert!(error.to_string().starts_with("hosts.txt:2: "), "{error}");
    assert!(error.to_string().contains("not a port"), "{error}");
    let error = parse(":2101\n", 1, 0).unwrap_err();
    assert!(error.to_string().contains("no host"), "{error}");
}

#[test]
fn the_count_must_match_the_processes_and_the_process_be_one_of_them() {
    let error = parse("127.0.0.1:2101\n", 2, 0).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("the hosts file hosts.txt lists 1 process but --processes is 2"),
        "{error}"
    );
    let error = parse("127.0.0.1:2101\n127.0.0.1:2102\n", 2, 2).unwrap_err();
    assert_eq!(
        error.to_string(),
        "--process 2 is not one of the 2 processes (0 to 1)"
    );
}

#[test]
fn side_files_of_other_processes_go_beside_process_0s() {
    let hosts = "127.0.0.1:2101\n127.0.0.1:2102\n";
    let first = parse(hosts, 2, 0).expect("parses");
    let second = parse(hosts, 2, 1).expect("parses");
    let path = Path::new("/tmp/out/rejected.jsonl");
    assert_eq!(first.side_path(path), path);
    assert_eq!(
        second.side_path(path),
        Path::new("/tmp/out/rejected.p1.jsonl")
    );
    assert_eq!(second.side_path(Path::new("late")), Path::new("late.p1"));
}
